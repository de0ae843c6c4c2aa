"""The Recipient Update Service: runs on its own thread, on request and on its schedule."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.policies.catalog import apply_policy
from app.rus.runner import BATCH_SIZE, Progress, describe_owner, new_owner, run
from app.rus.schedule import Schedule, load_schedule, save_schedule
from app.store import DatabaseError, Store
from app.store import rus as rows
from app.store.rus import RunKind, RunRecord

log = logging.getLogger(__name__)

ServiceState = Literal["stopped", "idle", "waiting", "running"]
POLL_SECONDS = 1.0
FAILURE_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class RusEvent:
    """What a listener is told: the service's state, and the run's progress or its record.

    ``state`` is 'waiting' while another process's run holds the lease (``waiting_for`` names
    it), 'running' during a run (``progress`` set), 'idle' after one (``report`` set once, with
    the finished run), 'stopped' when the thread ends.
    """

    state: ServiceState
    progress: Progress | None = None
    report: RunRecord | None = None
    waiting_for: str = ""


Listener = Callable[[RusEvent], None]


def _local_now() -> datetime:
    return datetime.now().astimezone()


class RecipientUpdateService:
    """Runs Update Now and Rebuild on one background thread, one run at a time.

    Requests made during a run coalesce into one more run (a Rebuild request wins over Update
    Now). Across processes, runs take turns through a lease in the store. Every public method may
    be called from any thread. Requests never wait for a run (``request_apply`` and
    ``set_schedule`` make one short write); ``stop`` waits for the batch under way and
    ``wait_until_idle`` for the runs asked for. Listeners are called on the service's own
    thread, never on the caller's (the console bridges them to Qt signals); they should return
    quickly, as the run waits for them. ``clock`` gives the aware local time the schedule is
    read in (tests replace it).
    """

    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float = POLL_SECONDS,
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], datetime] = _local_now,
    ) -> None:
        self._store = store
        self._poll = poll_interval
        self._batch_size = batch_size
        self._clock = clock
        self._owner = new_owner()
        self._cond = threading.Condition()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._requested: RunKind | None = None
        self._busy = False
        self._state: ServiceState = "stopped"
        self._progress: Progress | None = None
        self._last_report: RunRecord | None = None
        self._listeners: list[Listener] = []
        # Scheduling memory, touched only on the service thread.
        self._schedule = Schedule()
        self._seen_counter: int | None = None
        self._quiet_counter: int | None = None
        self._not_before = 0.0

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the service thread (once); it runs the schedule until ``stop``."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._state = "idle"
            self._thread = threading.Thread(
                target=self._main, name="recipient-update-service", daemon=True
            )
            self._thread.start()
        log.info("Recipient Update Service started")

    def stop(self, timeout: float | None = 30.0) -> None:
        """Cancel the run under way (its finished batches stay) and end the thread."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cancel.set()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._thread = None
        log.info("Recipient Update Service stopped")

    @property
    def is_running(self) -> bool:
        """Whether the service thread is alive (not whether a run is under way: see ``state``)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- requests ----------------------------------------------------------------------------

    def request_update(self) -> None:
        """Update Now: look at objects changed since the last run, and applied policies' objects."""
        self._request("update")

    def request_rebuild(self) -> None:
        """Rebuild: look at every object (the console warns that this can take long)."""
        self._request("rebuild")

    def request_apply(self, policy_name: str) -> None:
        """Apply this policy now: mark it applied, then Update Now stamps its objects.

        Marking is one short write on the calling thread; raises PostroomError (NotFoundError)
        if there is no such policy.
        """
        apply_policy(self._store, policy_name)
        self._request("update")

    def cancel(self) -> None:
        """Cancel the run under way, if any; objects already stamped stay stamped.

        Under 'Always run' the service does not start again until something else changes.
        """
        with self._cond:
            if self._busy:
                self._cancel.set()

    def _request(self, kind: RunKind) -> None:
        with self._cond:
            if self._requested != "rebuild":
                self._requested = kind
            self._cond.notify_all()

    # -- what the console shows --------------------------------------------------------------

    @property
    def state(self) -> ServiceState:
        return self._state

    @property
    def progress(self) -> Progress | None:
        """The run under way, if any."""
        return self._progress

    @property
    def last_report(self) -> RunRecord | None:
        """The last run this service finished (``status.read_status`` has any process's)."""
        return self._last_report

    @property
    def schedule(self) -> Schedule:
        """The schedule the service last read (it rereads the store after every change)."""
        return self._schedule

    def set_schedule(self, schedule: Schedule) -> None:
        """Store a new schedule (one short write on the calling thread) and apply it at once."""
        save_schedule(self._store, schedule)
        with self._cond:
            self._seen_counter = None  # reread the schedule
            self._cond.notify_all()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` on the service thread at each state change, batch and end."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is requested or under way; False on timeout (tests, headless use)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._busy or self._requested is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    # -- the service thread ------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("the Recipient Update Service thread failed")
        finally:
            with self._cond:
                self._busy = False
                self._requested = None
                self._state = "stopped"
                self._cond.notify_all()
            self._emit(RusEvent("stopped"))

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                kind = self._take_request()
                if kind is None:
                    self._cond.wait(self._poll)
                    if self._stopping:
                        return
                    kind = self._take_request()
            if kind is None:
                try:
                    kind = self._scheduled_run()
                except DatabaseError as error:  # e.g. the database is locked for long
                    log.warning("the Recipient Update Service cannot read its schedule: %s", error)
                    kind = None
            if kind is not None:
                self._run(kind)

    def _take_request(self) -> RunKind | None:
        kind = self._requested
        if kind is not None:
            self._requested = None
            self._busy = True
            self._cancel.clear()
        return kind

    def _scheduled_run(self) -> RunKind | None:
        """'update' if the schedule says a run is due now; reads the store (service thread)."""
        store = self._store
        counter = store.change_counter()
        moved = counter != self._seen_counter
        if moved:
            self._seen_counter = counter
            self._schedule = load_schedule(store)
        schedule = self._schedule
        due = False
        if schedule.mode == "always":
            if moved and counter != self._quiet_counter:
                if time.monotonic() < self._not_before:
                    self._seen_counter = None  # look again once the back-off is over
                else:
                    with store.read() as conn:
                        due = rows.has_work(conn)
        elif schedule.mode != "never":
            with store.read() as conn:
                started = rows.last_started(conn)
            last = datetime.fromisoformat(started) if started else None
            due = schedule.is_due(self._clock(), last)
        if not due:
            return None
        with self._cond:
            if self._stopping:
                return None
            self._busy = True
            self._cancel.clear()
        return "update"

    def _run(self, kind: RunKind) -> None:
        self._set_state("running")
        record: RunRecord | None = None
        crashed = False
        try:
            record = run(
                self._store,
                kind,
                owner=self._owner,
                cancel=self._cancel,
                on_progress=self._on_progress,
                on_wait=self._on_wait,
                batch_size=self._batch_size,
            )
        except Exception:  # a run must never end the service thread
            log.exception("Recipient Update Service run failed")
            crashed = True
        finally:
            if record is None or record.outcome != "completed":
                # Do not start again by ourselves until something changes (or a while passes).
                try:
                    self._quiet_counter = self._store.change_counter()
                except DatabaseError:
                    self._quiet_counter = None
                self._seen_counter = None
                if crashed or (record is not None and record.outcome == "failed"):
                    self._not_before = time.monotonic() + FAILURE_BACKOFF_SECONDS
            with self._cond:
                self._busy = False
                self._progress = None
                if record is not None:
                    self._last_report = record
                self._state = "idle"
                self._cond.notify_all()
            self._emit(RusEvent("idle", report=record))

    def _on_progress(self, progress: Progress) -> None:
        self._progress = progress
        self._state = "running"
        self._emit(RusEvent("running", progress=progress))

    def _on_wait(self, holder: str) -> None:
        self._set_state("waiting", waiting_for=describe_owner(holder))

    def _set_state(self, state: ServiceState, waiting_for: str = "") -> None:
        self._state = state
        self._emit(RusEvent(state, progress=self._progress, waiting_for=waiting_for))

    def _emit(self, event: RusEvent) -> None:
        with self._cond:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a Recipient Update Service listener failed")
