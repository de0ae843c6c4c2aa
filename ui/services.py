"""Qt adapters for the engine's background services: the Recipient Update Service, SMTP, and
Dovecot (IMAP4 and POP3).

The services run on their own threads and call listeners there; each bridge turns those calls
into queued Qt signals, so views and the status bar only ever see them on the GUI thread. No
bridge method waits for a run, a socket or a thread on the GUI thread: starting and stopping
SMTP go through the task runner.
"""

from __future__ import annotations

import copy
import importlib
import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from app import rus
from app.dovecot.config import Listener
from app.dovecot.service import DovecotService
from app.errors import PostroomError
from app.rus.schedule import Schedule, load_schedule
from app.rus.service import RecipientUpdateService, RusEvent
from app.settings import load_settings
from app.store import RunRecord, Store
from ui.actions import make_action
from ui.formatting import local_time
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)

RUN_KIND_TEXT = {"update": "Update Now", "rebuild": "Rebuild"}


class RusBridge(QObject):
    """The console's Recipient Update Service. Create and use on the GUI thread."""

    status_changed = Signal()
    """State, progress or last run changed (GUI thread)."""
    progress_changed = Signal(int, int)
    """``done``, ``total`` of the run under way (GUI thread)."""
    run_finished = Signal(object)
    """A run of this service ended: its ``RunRecord``, or None if it never started."""
    # Emitted on the service thread; Qt queues it to this object's (the GUI) thread.
    _from_service = Signal(object)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.service = RecipientUpdateService(store)
        self.state = "stopped"
        self.kind = ""
        self.done = 0
        self.total = 0
        self.waiting_for = ""
        self.last_report: RunRecord | None = None
        self._shut_down = False
        self._from_service.connect(self._on_event)
        self.service.add_listener(self._listener)
        self.cancel_action = make_action(
            self, "&Cancel", "stop", None, "Cancel the Recipient Update Service's run"
        )
        self.cancel_action.triggered.connect(self.cancel)
        self.cancel_action.setEnabled(False)

    def _listener(self, event: RusEvent) -> None:
        """Service thread: hand the event to the GUI thread."""
        self._from_service.emit(event)

    def _on_event(self, event: RusEvent) -> None:
        """GUI thread: keep a copy of the state for the views and the status bar."""
        if self._shut_down:
            return  # queued before shutdown; the store may be closed already
        self.state = event.state
        self.waiting_for = event.waiting_for
        if event.progress is not None:
            self.kind = event.progress.kind
            self.done, self.total = event.progress.done, event.progress.total
            self.progress_changed.emit(self.done, self.total)
        if event.state == "idle":
            self.done = self.total = 0
            if event.report is not None:
                self.last_report = event.report
            self.run_finished.emit(event.report)
        self.cancel_action.setEnabled(self.is_running_update)
        self.status_changed.emit()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.service.start()
        self.state = self.service.state
        self.status_changed.emit()

    def shutdown(self) -> None:
        """At exit: cancel a run and end the service thread (waits for the current batch)."""
        self._shut_down = True
        self.service.remove_listener(self._listener)
        self.service.stop()

    # -- requests (none waits for the run) -------------------------------------------------

    def update_now(self) -> None:
        self.service.request_update()

    def rebuild(self) -> None:
        self.service.request_rebuild()

    def apply_policy(self, name: str) -> None:
        """Apply this policy now: mark it applied (a short write) and request an update."""
        self.service.request_apply(name)

    def cancel(self) -> None:
        self.service.cancel()

    @property
    def schedule(self) -> Schedule:
        """The stored schedule (one short read)."""
        return load_schedule(self.store)

    def set_schedule(self, schedule: Schedule) -> None:
        """Store the schedule (raises PostroomError); the service applies it at once."""
        self.service.set_schedule(schedule)
        self.status_changed.emit()

    # -- what the console shows ------------------------------------------------------------

    @property
    def is_running_update(self) -> bool:
        """Whether a run is under way (or waiting for another process's run)."""
        return self.state in ("running", "waiting")

    def last_run(self) -> RunRecord | None:
        """The last finished run by any process (one short read)."""
        try:
            return rus.last_run(self.store)
        except Exception:  # the store may be closing at exit
            log.debug("cannot read the last RUS run", exc_info=True)
            return self.last_report

    def status_text(self) -> str:
        if self.state == "running":
            what = RUN_KIND_TEXT.get(self.kind, "Update")
            return f"Recipient Update Service: {what} {self.done:,} of {self.total:,}"
        if self.state == "waiting":
            return f"Recipient Update Service: waiting for {self.waiting_for}"
        if self.state == "stopped":
            return "Recipient Update Service: stopped"
        return "Recipient Update Service: idle"

    def describe_run(self, record: RunRecord | None) -> str:
        """A finished run as the list's Status column shows it."""
        if record is None:
            return "Never run"
        what = RUN_KIND_TEXT.get(record.kind, record.kind)
        if record.outcome == "completed":
            text = f"{what} completed: {record.examined:,} examined, {record.changed:,} changed"
            if record.errors:
                text += f", {record.errors:,} errors"
            return text
        if record.outcome == "cancelled":
            return f"{what} cancelled after {record.done:,} of {record.total:,}"
        if record.outcome == "failed":
            return f"{what} failed: {record.message}"
        return what

    def last_run_time(self, record: RunRecord | None) -> str:
        return local_time(record.finished or record.started) if record else ""


class SmtpBridge(QObject):
    """The console's embedded SMTP service (the Default SMTP Virtual Server).

    ``state`` is 'stopped', 'starting', 'running', 'stopping' or 'unavailable'. Start and stop
    run on a task runner of their own with one long-lived thread (the service wants both called
    from one thread), so a slow bind or a draining session never blocks the GUI thread. The
    service's event callback (its events thread) reaches ``event`` queued, on the GUI thread.
    """

    state_changed = Signal()
    smtp_event = Signal(object)
    """One SmtpEvent from the service (GUI thread)."""
    failed = Signal(str)
    """Starting or stopping was refused; the message says why (e.g. the port is taken)."""
    _from_service = Signal(object)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.tasks = TaskRunner(self, max_threads=1, keep_thread=True)
        self.state = "stopped"
        self.last_error = ""
        self.addresses: list[str] = []
        self.service: Any = None
        self._from_service.connect(self.smtp_event)
        self._service_class = _smtp_service_class()
        if self._service_class is None:
            self.state = "unavailable"

    def _callback(self, event: object) -> None:
        """SMTP events thread: pass the event to the GUI thread."""
        self._from_service.emit(event)

    # -- life cycle ------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self._service_class is not None

    def start_if_autostart(self) -> None:
        if self.available and load_settings(self.store).autostart:
            self.start()

    def start(self) -> None:
        """Start listening (in the background); ``state_changed`` tells the outcome."""
        if self._service_class is None or self.state not in ("stopped",):
            return
        self.last_error = ""
        service = self._service_class(self.store, on_event=self._callback)
        self.service = service
        self._set_state("starting")
        self.tasks.submit(
            "start SMTP",
            _start,
            service,
            on_success=self._started,
            on_failure=self._start_failed,
        )

    def _started(self, addresses: list[str]) -> None:
        self.addresses = list(addresses)
        self._set_state("running")

    def _start_failed(self, error: Exception) -> None:
        self.last_error = str(error)
        self.service = None
        self._set_state("stopped")
        self.failed.emit(self.last_error)

    def pause(self) -> None:
        """Refuse new connections (421) while open sessions go on; sets a flag, never waits."""
        if self.service is None or self.state != "running":
            return
        self.service.pause()
        self._set_state("paused")

    def resume(self) -> None:
        """Accept new connections again after a pause."""
        if self.service is None or self.state != "paused":
            return
        self.service.resume()
        self._set_state("running")

    def stop(self) -> None:
        """Stop listening and end the sessions (in the background)."""
        if self.service is None or self.state not in ("running", "paused"):
            return
        self._set_state("stopping")
        self.tasks.submit(
            "stop SMTP",
            self.service.stop,
            on_success=lambda _result: self._stopped(),
            on_failure=self._stop_failed,
        )

    def _stopped(self) -> None:
        self.service = None
        self.addresses = []
        self._set_state("stopped")

    def _stop_failed(self, error: Exception) -> None:
        self.last_error = str(error)
        self._stopped()
        self.failed.emit(self.last_error)

    def shutdown(self) -> None:
        """At exit: stop the service on its thread and wait for that (the window is closed)."""
        if self.service is not None and self.state in ("starting", "running", "paused"):
            self.tasks.submit("stop SMTP", self.service.stop)
        self.tasks.wait()
        self.tasks.shutdown()
        self.service = None
        self.state = "stopped" if self.available else "unavailable"

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit()

    # -- what the console shows ------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """Listening (a paused service still listens, and its open sessions go on)."""
        return self.state in ("running", "paused")

    def sessions(self) -> list[Any]:
        """The clients connected now (a snapshot the service takes under a short lock)."""
        service = self.service
        if service is None or not self.is_running:
            return []
        # Copies: the service updates its objects in place as the sessions go on.
        return [copy.copy(connection) for connection in service.sessions()]

    def listen_text(self) -> str:
        if self.addresses:
            return ", ".join(self.addresses)
        try:
            return ", ".join(load_settings(self.store).listen)
        except PostroomError:
            return ""

    def status_text(self) -> str:
        if self.state == "unavailable":
            return "SMTP: not installed"
        texts = {
            "stopped": "SMTP: stopped",
            "starting": f"SMTP: starting on {self.listen_text()}",
            "running": f"SMTP: running on {self.listen_text()}",
            "paused": f"SMTP: paused on {self.listen_text()} (new connections get 421)",
            "stopping": "SMTP: stopping",
        }
        text = texts.get(self.state, f"SMTP: {self.state}")
        if self.state == "stopped" and self.last_error:
            text += " (could not start)"
        return text


class DovecotBridge(QObject):
    """The console's Dovecot (the Default IMAP4 and POP3 Virtual Servers), started beside SMTP.

    ``state`` is 'stopped', 'starting', 'running' or 'stopping'. Start and stop run on a task
    runner of their own, so waiting for Dovecot to listen never blocks the GUI thread. A Dovecot
    that is missing or does not start leaves its one line in ``last_error`` (and ``failed``);
    SMTP runs on.
    """

    state_changed = Signal()
    failed = Signal(str)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.tasks = TaskRunner(self, max_threads=1, keep_thread=True)
        self.state = "stopped"
        self.last_error = ""
        self.listeners: list[Listener] = []
        self.service = DovecotService(store)

    def start_if_autostart(self) -> None:
        if load_settings(self.store).autostart:
            self.start()

    def start(self) -> None:
        """Start Dovecot (in the background); ``state_changed`` tells the outcome."""
        if self.state != "stopped":
            return
        self.last_error = ""
        self._set_state("starting")
        self.tasks.submit(
            "start Dovecot",
            self.service.start,
            on_success=self._started,
            on_failure=self._start_failed,
        )

    def _started(self, listeners: list[Listener]) -> None:
        self.listeners = list(listeners)
        self._set_state("running" if listeners else "stopped")

    def _start_failed(self, error: Exception) -> None:
        self.last_error = str(error)
        log.warning("%s", error)
        self._set_state("stopped")
        self.failed.emit(self.last_error)

    def stop(self) -> None:
        """Stop Dovecot and end its sessions (in the background)."""
        if self.state != "running":
            return
        self._set_state("stopping")
        self.tasks.submit(
            "stop Dovecot", self.service.stop, on_success=lambda _result: self._stopped()
        )

    def _stopped(self) -> None:
        self.listeners = []
        self._set_state("stopped")

    def shutdown(self) -> None:
        """At exit: stop Dovecot on its thread and wait for that (the window is closed)."""
        self.tasks.submit("stop Dovecot", self.service.stop)
        self.tasks.wait()
        self.tasks.shutdown()
        self.listeners = []
        self.state = "stopped"

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit()

    @property
    def is_running(self) -> bool:
        return self.state == "running"

    def status_text(self) -> str:
        if self.state == "running":
            where = ", ".join(f"{item.host}:{item.port} ({item.name})" for item in self.listeners)
            return f"IMAP4/POP3: running on {where}"
        text = f"IMAP4/POP3: {self.state}"
        return text + (" (could not start)" if self.last_error else "")


def _start(service: Any) -> list[str]:
    """SMTP task thread: start the service; the addresses it listens on."""
    service.start()
    return list(service.addresses)


def _smtp_service_class() -> Any:
    """The engine's SmtpService class, or None where the SMTP package is not there."""
    try:
        module = importlib.import_module("app.smtp.service")
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("app.smtp"):
            return None
        raise
    return getattr(module, "SmtpService", None)
