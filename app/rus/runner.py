"""One run of the Recipient Update Service: Update Now or Rebuild, in batches, under a lease.

What a run does to each object is in ``stamping`` (the rules), ``collisions`` (free addresses)
and ``slices`` (writing); this module runs them over the candidates.

High-water mark: stamping does not take a change number, so it does not make an object look
changed. A run notes the highest change number when it starts; once it completes, that number is
the new mark, and the next Update Now looks at objects whose change number is above it (objects
changed while the run was under way included, which is harmless: they are then left alone).
An object's ``stamped_usn`` is the highest change number at the moment it was stamped, so a policy
applied later (which takes a fresh change number) is "applied since it was last stamped".

Batches: each batch of objects is one write transaction that re-reads its objects and the
policies, so concurrent edits are never lost and an object is either fully stamped or untouched.
A cancel takes effect between batches.

Speed (a 100,000-object Rebuild, see benchmarks/rus.py): big runs load every proxy address once
into an index kept up to date per batch, remember how far each much-shared name's suffixes go,
let a helper process (``helper``) work out policies and local parts ahead, and write each slice
of a batch on a second thread while the next slice is worked out, in the same transaction.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.directory.addressing import NameValues
from app.errors import PostroomError
from app.model import Recipient, RecipientPolicy, now
from app.policies.effective import PolicySet, name_values
from app.rus.collisions import TakenAddresses
from app.rus.helper import HELPER_MIN_OBJECTS, PreparedBatch, Preparer, helper_possible
from app.rus.slices import SliceWriter, Writes
from app.rus.stamping import Address, Judgement, applied_since, judge_fields, stamp_addresses
from app.store import Connection, ConstraintError, DatabaseError, Store
from app.store import policies as policy_rows
from app.store import rus as rows
from app.store.database import current_usn
from app.store.rus import RunKind, RunRecord

log = logging.getLogger(__name__)

BATCH_SIZE = 4000
"""Objects per write transaction: large enough to be fast, small enough to cancel promptly and
to let other writers in between."""
LAZY_LIMIT = 1000
"""Runs with at most this many objects ask the database about collisions instead of loading
every proxy address first (Update Now with a few changed objects stays in milliseconds)."""
LEASE_SECONDS = 60.0
"""How long a run's lease lasts unless renewed (every batch renews it). Longer than the store's
busy timeout, so a batch that waits its turn to write does not lose it; a crashed process's
lease holds others back for at most this long."""
LEASE_POLL_SECONDS = 0.2
KEEP_RUNS = 500
SLICE_SIZE = 500
"""Objects per slice of a batch: one slice is written while the next is worked out."""


@dataclass(frozen=True)
class Progress:
    """How far a run has got: ``done`` of ``total`` objects looked at."""

    run_id: int
    kind: RunKind
    done: int
    total: int


class LeaseLostError(PostroomError):
    """Another process took over the Recipient Update Service lease during a run."""


def new_owner() -> str:
    """A name for one lease holder: host, process and a random part (unique per service)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def describe_owner(owner: str) -> str:
    """A lease owner as people read it: 'process 1234 on host'."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return f"process {pid} on {host}" if pid else owner


# -- a run -----------------------------------------------------------------------------------


@dataclass
class _Counts:
    done: int = 0
    examined: int = 0
    changed: int = 0
    errors: int = 0


@dataclass
class _Snapshot:
    """What a run noted when it began, in the transaction that took the lease."""

    run_id: int
    kind: RunKind
    started: str
    start_usn: int
    hwm: int
    pending: list[tuple[int, int]]  # (policy id, applied usn) of policies applied by then
    candidates: list[int]
    taken: TakenAddresses


@dataclass
class _Object:
    """One object of a batch as the run needs it: read here, or prepared by the helper."""

    id: int
    usn: int
    stamped_usn: int | None
    auto_update: bool
    addresses: tuple[Address, ...]
    policy: RecipientPolicy | None
    local_parts: dict[str, str]
    values: NameValues | None  # None when prepared: the helper made every local part

    @classmethod
    def read(cls, recipient: Recipient, policies: PolicySet) -> _Object:
        return cls(
            int(recipient.id or 0),
            recipient.usn,
            recipient.stamped_usn,
            recipient.auto_update,
            tuple((a.type, a.address, a.primary) for a in recipient.addresses),
            policies.effective(recipient),
            {},
            name_values(recipient),
        )


def run(
    store: Store,
    kind: RunKind = "update",
    *,
    owner: str | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    batch_size: int = BATCH_SIZE,
    helper: bool | None = None,
) -> RunRecord | None:
    """Run Update Now (``kind='update'``) or Rebuild, once another process's run has finished.

    Blocks the calling thread; ``on_progress`` (after each batch) and ``on_wait`` (once, with
    the lease holder, if another run is under way) are called on the calling thread. ``helper``:
    prepare batches in a helper process (None: for runs of ``HELPER_MIN_OBJECTS`` or more, when
    two CPUs are there). Returns the run's record; None if ``cancel`` was set while waiting for
    the lease. Per-object failures are counted in ``errors``; a run that could not go on
    (database trouble, lost lease) has the outcome 'failed' and says why in ``message``.
    """
    if kind not in ("update", "rebuild"):
        raise ValueError(f"unknown run kind {kind!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    owner = owner or new_owner()
    cancel = cancel or threading.Event()
    try:
        snapshot = _begin(store, kind, owner, cancel, on_wait)
    except DatabaseError as error:
        raise PostroomError(
            f"The Recipient Update Service cannot start a run: {error.cause}. "
            "Check that the data directory can be written, then try again."
        ) from error
    if snapshot is None:
        return None
    return _Run(store, owner, snapshot, batch_size).go(cancel, on_progress, helper)


def _begin(
    store: Store,
    kind: RunKind,
    owner: str,
    cancel: threading.Event,
    on_wait: Callable[[str], None] | None,
) -> _Snapshot | None:
    """Wait for the lease, then note the run and what it will look at, in one transaction."""
    told = False
    while True:
        if cancel.is_set():
            return None
        with store.read() as conn:
            holder = rows.lease_holder(conn, time.time())
        if holder is None or holder == owner:
            with store.write() as conn:
                holder = rows.acquire_lease(conn, owner, time.time(), LEASE_SECONDS)
                if holder == owner:
                    return _snapshot(conn, kind, owner)
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        cancel.wait(LEASE_POLL_SECONDS)


def _snapshot(conn: Connection, kind: RunKind, owner: str) -> _Snapshot:
    started = now()
    rows.tune_for_bulk(conn)
    run_id = rows.insert_run(conn, kind, owner, started)
    start_usn = current_usn(conn)
    hwm = rows.high_water_mark(conn)
    pending = [
        (int(p.id or 0), p.applied_usn)
        for p in policy_rows.load_policies(conn)
        if p.apply_pending and p.applied_usn is not None
    ]
    if kind == "rebuild":
        candidates = rows.candidate_ids(conn, None, None)
    else:
        newest_apply = max((usn for _, usn in pending), default=None)
        candidates = rows.candidate_ids(conn, hwm, newest_apply)
    owners = rows.address_owners(conn) if len(candidates) > LAZY_LIMIT else None
    rows.update_run(conn, run_id, done=0, total=len(candidates), examined=0, changed=0, errors=0)
    log.info("RUS run %d (%s): %d objects to look at", run_id, kind, len(candidates))
    return _Snapshot(
        run_id,
        kind,
        started,
        start_usn,
        hwm,
        pending,
        candidates,
        TakenAddresses(owners, start_usn),
    )


class _Run:
    """One run under way, on the thread that called ``run``."""

    def __init__(self, store: Store, owner: str, snapshot: _Snapshot, batch_size: int) -> None:
        self.store = store
        self.owner = owner
        self.snapshot = snapshot
        self.batches = [
            snapshot.candidates[start : start + batch_size]
            for start in range(0, len(snapshot.candidates), batch_size)
        ]
        self.batch_size = batch_size
        self.counts = _Counts()
        self.policies: PolicySet | None = None
        self.preparer: Preparer | None = None
        self.prepared_used = 0
        self.clock = time.perf_counter()

    def go(
        self,
        cancel: threading.Event,
        on_progress: Callable[[Progress], None] | None,
        helper: bool | None,
    ) -> RunRecord:
        snapshot, counts = self.snapshot, self.counts
        total = len(snapshot.candidates)
        outcome: rows.Outcome = "completed"
        message = ""
        # A big run makes objects that outlive a batch, and each full garbage collection that
        # triggers walks every object of the process, pausing the console's GUI thread for tens
        # of milliseconds: set what exists aside while the run goes on.
        frozen = total > LAZY_LIMIT
        if frozen:
            gc.freeze()
        try:
            if helper is None:
                helper = (
                    total >= HELPER_MIN_OBJECTS and self.batch_size >= 100 and helper_possible()
                )
            if helper and len(self.batches) > 1:
                try:
                    self.preparer = Preparer(self.store.paths.database, self.batches)
                except OSError as error:
                    log.warning("RUS run %d: no helper process (%s)", snapshot.run_id, error)
            if on_progress:
                on_progress(Progress(snapshot.run_id, snapshot.kind, 0, total))
            for index, ids in enumerate(self.batches):
                if cancel.is_set():
                    outcome = "cancelled"
                    break
                prepared = self.preparer.take(index) if self.preparer else None
                self._batch_with_retry(ids, prepared)
                counts.done += len(ids)
                if on_progress:
                    on_progress(Progress(snapshot.run_id, snapshot.kind, counts.done, total))
        except PostroomError as error:  # DatabaseError included
            log.error("RUS run %d failed: %s", snapshot.run_id, error)
            outcome, message = "failed", str(error)
        except Exception as error:
            self._close_preparer()
            self._finish("failed", f"internal error: {type(error).__name__}: {error}")
            raise
        except BaseException:  # KeyboardInterrupt, SystemExit: batches done so far stay
            self._close_preparer()
            self._finish("cancelled", "interrupted")
            raise
        finally:
            if frozen:
                gc.unfreeze()
        self._close_preparer()
        if helper:
            log.info(
                "RUS run %d: %d of %d objects prepared by the helper",
                snapshot.run_id,
                self.prepared_used,
                counts.done,
            )
        return self._finish(outcome, message)

    def _close_preparer(self) -> None:
        if self.preparer is not None:
            self.preparer.close()
            self.preparer = None

    def _batch_with_retry(self, ids: Sequence[int], prepared: PreparedBatch | None) -> None:
        try:
            self._batch(ids, prepared)
        except ConstraintError as error:
            # Someone wrote an address without taking a change number: read them all, retry.
            log.warning("RUS run %d: %s; reloading the address index", self.snapshot.run_id, error)
            self.snapshot.taken.rollback()
            with self.store.read() as conn:
                self.snapshot.taken.reload(conn)
            self._batch(ids, None)

    def _load(
        self,
        conn: Connection,
        ids: Sequence[int],
        policies: PolicySet,
        prepared: PreparedBatch | None,
    ) -> list[_Object]:
        """The batch's objects as they are now, using what the helper prepared if still true."""
        if prepared is None or prepared.policies != policies.policies:
            return [_Object.read(r, policies) for r in rows.load_for_stamping(conn, ids)]
        usns = rows.change_numbers(conn, ids)
        ready = {
            rid: p
            for rid, p in prepared.objects.items()
            if usns.get(rid) == p[0]  # unchanged since the helper read it
        }
        missing = [rid for rid in ids if rid in usns and rid not in ready]
        fresh = {int(r.id or 0): r for r in rows.load_for_stamping(conn, missing)}
        objects = []
        for rid in ids:
            p = ready.get(rid)
            if p is not None:
                self.prepared_used += 1
                usn, stamped_usn, auto_update, addresses, policy_id, local_parts = p
                policy = policies.by_id(policy_id)
                objects.append(
                    _Object(
                        rid, usn, stamped_usn, auto_update, addresses, policy, local_parts, None
                    )
                )
            elif rid in fresh:
                objects.append(_Object.read(fresh[rid], policies))
        return objects

    def _batch(self, ids: Sequence[int], prepared: PreparedBatch | None) -> None:
        """Look at one batch of objects and write what they need, in one transaction."""
        snapshot, counts = self.snapshot, self.counts
        taken = snapshot.taken
        run_id = snapshot.run_id
        batch = _Counts()
        try:
            with self.store.write() as conn:
                if not rows.renew_lease(conn, self.owner, time.time(), LEASE_SECONDS):
                    raise LeaseLostError(
                        "Another process took over the Recipient Update Service while this run "
                        "was paused for too long; its results so far are kept."
                    )
                loaded = tuple(policy_rows.load_policies(conn))
                if self.policies is None or self.policies.policies != loaded:
                    self.policies = PolicySet(loaded)
                policies = self.policies
                taken.refresh(conn)
                stamp_usn = current_usn(conn)
                verdicts: list[tuple[_Object, Judgement]] = []
                for obj in self._load(conn, ids, policies, prepared):
                    policy = obj.policy
                    if (
                        snapshot.kind == "update"
                        and obj.usn <= snapshot.hwm
                        and not (policy is not None and applied_since(policy, obj.stamped_usn))
                    ):
                        continue  # a candidate only in case it was an applied policy's object
                    verdict = judge_fields(
                        obj.auto_update, obj.stamped_usn, bool(obj.addresses), policy
                    )
                    verdicts.append((obj, verdict))
                batch.examined = len(verdicts)
                restamped = [
                    o.id
                    for o, v in verdicts
                    if v.decision == "stamped" and o.stamped_usn is not None
                ]
                old = rows.load_provenance(conn, restamped) if restamped else {}
                # Work out a slice while the previous slice's rows are written: SQLite lets go
                # of the GIL while it works, so the two overlap. Same connection, same
                # transaction: the batch still commits (or rolls back) as one.
                with SliceWriter(conn, taken.sql_lock, overlap=taken.preloaded) as writer:
                    for start in range(0, len(verdicts), SLICE_SIZE):
                        writes = self._stamp_slice(
                            conn, verdicts[start : start + SLICE_SIZE], old, policies, batch
                        )
                        writer.submit(writes, stamp_usn)
                rows.update_run(
                    conn,
                    run_id,
                    done=counts.done + len(ids),
                    total=len(snapshot.candidates),
                    examined=counts.examined + batch.examined,
                    changed=counts.changed + batch.changed,
                    errors=counts.errors + batch.errors,
                )
        except BaseException:
            taken.rollback()
            raise
        taken.commit()
        counts.examined += batch.examined
        counts.changed += batch.changed
        counts.errors += batch.errors

    def _stamp_slice(
        self,
        conn: Connection,
        verdicts: Sequence[tuple[_Object, Judgement]],
        old: dict[int, str],
        policies: PolicySet,
        batch: _Counts,
    ) -> Writes:
        """Work out the writes for some objects of the batch (Python only, no SQL)."""
        taken = self.snapshot.taken
        run_id = self.snapshot.run_id
        writes = Writes()
        for obj, verdict in verdicts:
            rid = obj.id
            policy = verdict.policy
            name = policy.name if policy else ""
            if verdict.decision != "stamped" or policy is None:
                writes.others.append((rid, run_id, verdict.decision, name, verdict.reason))
                continue
            previous = old.get(rid)
            try:
                stamp = stamp_addresses(
                    conn,
                    rid,
                    obj.addresses,
                    obj.values,
                    policy,
                    policies.rules(policy),
                    taken,
                    run_id,
                    rows.parse_provenance(previous) if previous else (),
                    obj.local_parts,
                )
            except PostroomError as error:
                batch.errors += 1
                writes.others.append((rid, run_id, "error", name, str(error)))
                continue
            for key, plain, suffix in stamp.new:
                taken.assign(key, rid, plain, suffix)
            writes.demote += stamp.demote
            writes.promote += stamp.promote
            writes.insert += stamp.insert
            writes.stamped.append(rid)
            reason = verdict.reason
            if stamp.changed:
                batch.changed += 1
            else:
                reason += "; its addresses were already current"
            writes.stamps.append(
                (rid, run_id, name, reason, rows.provenance_text(stamp.provenance))
            )
        return writes

    def _finish(self, outcome: rows.Outcome, message: str) -> RunRecord:
        """Record the run's end, advance the high-water mark if it completed, free the lease."""
        snapshot, counts = self.snapshot, self.counts
        duration = time.perf_counter() - self.clock
        record: RunRecord | None
        try:
            with self.store.write() as conn:
                if outcome == "completed":
                    rows.set_high_water_mark(conn, snapshot.start_usn)
                    for policy_id, applied_usn in snapshot.pending:
                        policy_rows.clear_apply_pending(conn, policy_id, applied_usn)
                rows.update_run(
                    conn,
                    snapshot.run_id,
                    done=counts.done,
                    total=len(snapshot.candidates),
                    examined=counts.examined,
                    changed=counts.changed,
                    errors=counts.errors,
                )
                rows.finish_run(
                    conn,
                    snapshot.run_id,
                    finished=now(),
                    duration=duration,
                    outcome=outcome,
                    message=message,
                )
                rows.prune_runs(conn, KEEP_RUNS)
                rows.release_lease(conn, self.owner)
                record = rows.find_run(conn, snapshot.run_id)
            with self.store.read() as conn:
                rows.tune_for_bulk(conn, bulk=False)
        except DatabaseError as error:
            # The lease runs out by itself; the run's row says 'running' until then.
            log.error("RUS run %d: cannot record its end: %s", snapshot.run_id, error)
            record = None
        if record is None:
            record = RunRecord(
                snapshot.run_id,
                snapshot.kind,
                self.owner,
                snapshot.started,
                now(),
                duration,
                "failed",
                counts.done,
                len(snapshot.candidates),
                counts.examined,
                counts.changed,
                counts.errors,
                message or "the end of the run could not be recorded",
            )
        log.info(
            "RUS run %d %s in %.3f s: examined %d, changed %d, errors %d",
            record.id,
            record.outcome,
            duration,
            record.examined,
            record.changed,
            record.errors,
        )
        return record
