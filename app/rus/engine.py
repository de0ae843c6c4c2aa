"""One run of the Recipient Update Service: Exchange's stamping rules, in batches, under a lease.

Per object (DESIGN §5): skip it if auto-update is off; find its effective policy; write addresses
only if it was never stamped, has no address, or its effective policy was applied since it was
last stamped. Writing adds what the enabled rules generate (collision-resolved against every
proxy address in the directory), makes the policy's primary the primary, demotes the old primary
and never deletes an address.

High-water mark: stamping does not take a change number, so it does not make an object look
changed. A run notes the highest change number when it starts; once it completes, that number is
the new mark, and the next Update Now looks at objects whose change number is above it (objects
changed while the run was under way included, which is harmless: they are then left alone).
An object's ``stamped_usn`` is the highest change number at the moment it was stamped, so a policy
applied later (which takes a fresh change number) is "applied since it was last stamped".

Batches: each batch of objects is one write transaction that re-reads its objects and the
policies, so concurrent edits are never lost and an object is either fully stamped or untouched.
A cancel takes effect between batches.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from app import addressing
from app.addressing import AddressTemplate, NameValues
from app.errors import PostroomError
from app.filters import And, LdapFilter, Not, Or, Presence, attribute_names
from app.model import SMTP, ProxyAddress, Recipient, RecipientPolicy
from app.policies import compiled_filter, now
from app.store import Store
from app.store import policies as policy_rows
from app.store import rus as rows
from app.store.database import current_usn
from app.store.rus import DecisionKind, Provenance, RunKind, RunRecord, address_key

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
"""Objects per write transaction: large enough to be fast, small enough to cancel promptly and
to let other writers in between."""
LAZY_LIMIT = 1000
"""Runs with at most this many objects ask the database about collisions instead of loading
every proxy address first (Update Now with a few changed objects stays in milliseconds)."""
LEASE_SECONDS = 30.0
LEASE_POLL_SECONDS = 0.2
KEEP_RUNS = 500


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


# -- policies and addresses ------------------------------------------------------------------


class PolicySet:
    """The policies in priority order with their filters compiled, for finding effective ones."""

    CACHE_LIMIT = 50_000

    def __init__(self, policies: Sequence[RecipientPolicy]) -> None:
        self.policies = tuple(policies)
        self._filters: list[tuple[RecipientPolicy, LdapFilter]] = []
        presence: set[str] = set()
        valued: set[str] = set()
        for policy in self.policies:
            compiled = compiled_filter(policy.filter)
            if compiled is not None:
                self._filters.append((policy, compiled))
                _collect_names(compiled, presence, valued)
        self._valued = frozenset(valued)
        self._presence_only = frozenset(presence - valued)
        self._cache: dict[tuple[tuple[str, object], ...], RecipientPolicy | None] = {}
        self._rules: dict[int | None, tuple[ActiveRule, ...]] = {}

    def effective(self, recipient: Recipient) -> RecipientPolicy | None:
        """The single highest-priority policy whose filter matches (as ``effective_policy``).

        Filters only look at the attributes they name, and an attribute only tested for
        presence (``mailNickname=*``) only for being non-empty; recipients that look the same
        in those respects have the same effective policy, which is remembered.
        """
        view: dict[str, str | list[str]] = {}
        for name, value in recipient.ldap_attributes().items():
            lower = name.lower()
            if lower in self._valued:
                view[lower] = value
            elif lower in self._presence_only and _present(value):
                view[lower] = "*"
        key = tuple(sorted((k, v if isinstance(v, str) else tuple(v)) for k, v in view.items()))
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = None
        for policy, compiled in self._filters:
            if compiled.matches(view):
                found = policy
                break
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found

    def rules(self, policy: RecipientPolicy) -> tuple[ActiveRule, ...]:
        """The policy's ``active_rules``, parsed once per batch."""
        found = self._rules.get(policy.id)
        if found is None:
            found = self._rules[policy.id] = active_rules(policy)
        return found


def _collect_names(f: LdapFilter, presence: set[str], valued: set[str]) -> None:
    """Sort the attribute names a filter tests into presence tests and value comparisons."""
    if isinstance(f, And | Or):
        for child in f.filters:
            _collect_names(child, presence, valued)
    elif isinstance(f, Not):
        _collect_names(f.filter, presence, valued)
    elif isinstance(f, Presence):
        presence.add(f.attribute.lower())
    else:
        valued.update(attribute_names(f))


def _present(value: str | list[str]) -> bool:
    if isinstance(value, str):
        return bool(value)
    return any(isinstance(item, str) and item for item in value)


@lru_cache(maxsize=1024)
def _template(text: str) -> AddressTemplate:
    return addressing.parse_template(text)


def name_values(recipient: Recipient) -> NameValues:
    """The values address templates draw on, as stored on the recipient."""
    return NameValues(
        alias=recipient.alias,
        given=recipient.attribute("givenName"),
        surname=recipient.attribute("sn"),
        initials=recipient.attribute("initials"),
        display=recipient.attribute("displayName"),
    )


def applied_since_stamp(policy: RecipientPolicy, recipient: Recipient) -> bool:
    """Rule (b): the policy is in the applied state since the object was last stamped."""
    return (
        policy.apply_pending
        and policy.applied_usn is not None
        and (recipient.stamped_usn is None or policy.applied_usn > recipient.stamped_usn)
    )


@dataclass(frozen=True)
class Judgement:
    """What the rules of DESIGN §5 say about one object: its decision and why."""

    decision: DecisionKind
    policy: RecipientPolicy | None
    reason: str


def judge(recipient: Recipient, policy: RecipientPolicy | None) -> Judgement:
    """Apply the per-object rules to a recipient whose effective policy is ``policy``."""
    if not recipient.auto_update:
        return Judgement(
            "skipped",
            policy,
            "'Automatically update e-mail addresses based on recipient policy' is off",
        )
    if policy is None:
        return Judgement("skipped", None, "no recipient policy's filter matches it")
    if recipient.stamped_usn is None:
        return Judgement("stamped", policy, "it had never been stamped")
    if not recipient.addresses:
        return Judgement("stamped", policy, "it had no e-mail address")
    if applied_since_stamp(policy, recipient):
        return Judgement(
            "stamped",
            policy,
            f"its policy was applied (change {policy.applied_usn}) after it was last stamped "
            f"(change {recipient.stamped_usn})",
        )
    return Judgement(
        "kept",
        policy,
        f"its policy '{policy.name}' has not been applied since it was last stamped; "
        f"to update its addresses: postroom policy apply '{policy.name}'",
    )


class TakenAddresses:
    """Which proxy addresses are in use and by whom, for resolving collisions.

    Big runs preload every address (``owners``); small runs ask the database. Additions by
    other programs during a run are picked up per batch from their change numbers (every address
    edit takes one), so the database's uniqueness constraint is never what catches a collision.
    An address that seems to belong to a recipient changed during the run is confirmed in the
    database (it may have given it up); one freed by a recipient deleted during the run still
    counts as taken until the next run, which at worst gives a suffix where none was needed.
    """

    def __init__(self, owners: dict[str, int] | None, seen_usn: int) -> None:
        self._owners = owners
        self._pending: dict[str, int] = {}
        self._seen_usn = seen_usn
        self._changed: set[int] = set()

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Take in what other programs changed; call at the start of each batch transaction."""
        if self._owners is not None:
            changed = rows.changed_ids(conn, self._seen_usn)
            if changed:
                self._changed.update(changed)
                self._owners.update(rows.address_owners(conn, changed))
        self._seen_usn = current_usn(conn)

    def reload(self, conn: sqlite3.Connection) -> None:
        """Forget what is known and read every address again."""
        self._pending.clear()
        self._changed.clear()
        if self._owners is not None:
            self._owners = rows.address_owners(conn)
        self._seen_usn = current_usn(conn)

    def is_taken(self, conn: sqlite3.Connection, type_: str, address: str, by: int) -> bool:
        """Whether the address belongs to a recipient other than ``by`` (ignoring case)."""
        key = address_key(type_, address)
        owner = self._pending.get(key)
        if owner is not None:
            return owner != by
        if self._owners is not None:
            owner = self._owners.get(key)
            if owner is None or owner == by:
                return False
            if owner not in self._changed:
                return True
        owner = rows.address_owner_id(conn, type_, address)
        if self._owners is not None:
            if owner is None:
                self._owners.pop(key, None)
            else:
                self._owners[key] = owner
        return owner is not None and owner != by

    def assign(self, key: str, owner: int) -> None:
        self._pending[key] = owner

    def commit(self) -> None:
        """The batch was written: its assignments are now facts."""
        if self._owners is not None:
            self._owners.update(self._pending)
        self._pending.clear()

    def rollback(self) -> None:
        self._pending.clear()


@dataclass(frozen=True)
class ActiveRule:
    """An enabled SMTP rule of a policy with its template parsed, as stamping uses it."""

    text: str
    template: AddressTemplate
    primary: bool


def active_rules(policy: RecipientPolicy) -> tuple[ActiveRule, ...]:
    """The rules that generate addresses: enabled SMTP ones (other types are kept as text)."""
    return tuple(
        ActiveRule(rule.address, _template(rule.address), rule.primary)
        for rule in policy.rules
        if rule.enabled and rule.is_smtp
    )


@dataclass
class Stamp:
    """The writes that stamp one recipient, and where each of its stamped addresses came from."""

    demote: list[tuple[int, str]]
    promote: list[tuple[int, str, str]]
    insert: list[tuple[int, str, str, bool]]
    provenance: list[Provenance]
    new_keys: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.demote or self.promote or self.insert)


def stamp_addresses(
    conn: sqlite3.Connection,
    recipient: Recipient,
    policy: RecipientPolicy,
    rules: Sequence[ActiveRule],
    taken: TakenAddresses,
    run_id: int,
    old_provenance: Sequence[Provenance] = (),
) -> Stamp:
    """Work out a recipient's new addresses under ``policy``; raises AddressError if it cannot.

    ``rules`` are ``active_rules(policy)``. Every generated address is added unless the recipient
    has it already; the primary rule's address becomes the primary SMTP address.
    """
    rid = int(recipient.id or 0)
    present: dict[str, ProxyAddress] = {
        address_key(a.type, a.address): a for a in recipient.addresses
    }
    values = name_values(recipient)
    local_parts: dict[str, str] = {}
    made: dict[str, Provenance] = {}
    new: dict[str, str] = {}
    primary_key: str | None = None

    def taken_by_other(address: str) -> bool:
        return taken.is_taken(conn, SMTP, address, rid)

    for rule in rules:
        template = rule.template
        local = local_parts.get(template.local_template)
        if local is None:
            local = addressing.generate_local_part(template, values)
            local_parts[template.local_template] = local
        plain = f"{local}@{template.domain}"
        address, suffix = addressing.first_free(plain, taken_by_other)
        key = "SMTP:" + address.lower()
        existing = present.get(key)
        if existing is not None:
            address = existing.address  # keep the spelling it has
        elif key in new:
            address = new[key]
        else:
            new[key] = address
        if key not in made:
            made[key] = Provenance(
                SMTP, address, policy.name, rule.text, suffix, run_id, plain if suffix else ""
            )
        if rule.primary:
            primary_key = key

    stamp = Stamp([], [], [], [], list(new))
    new_primary = None
    if primary_key is not None:
        current = next(
            (k for k, a in present.items() if a.primary and a.type.upper() == SMTP), None
        )
        if current != primary_key:
            if current is not None:
                stamp.demote.append((rid, present[current].type))
            if primary_key in present:
                proxy = present[primary_key]
                stamp.promote.append((rid, proxy.type, proxy.address))
            else:
                new_primary = primary_key
    stamp.insert = [(rid, SMTP, address, key == new_primary) for key, address in new.items()]
    if old_provenance:
        kept = [
            p
            for p in old_provenance
            if (k := address_key(p.type, p.address)) in present and k not in made
        ]
        stamp.provenance = kept + list(made.values())
    else:
        stamp.provenance = list(made.values())
    return stamp


# -- a run -----------------------------------------------------------------------------------


@dataclass
class _Counts:
    done: int = 0
    examined: int = 0
    changed: int = 0
    errors: int = 0


@dataclass
class _Snapshot:
    run_id: int
    kind: RunKind
    started: str
    start_usn: int
    hwm: int
    pending: list[tuple[int, int]]  # (policy id, applied usn) applied when the run began
    candidates: list[int]
    taken: TakenAddresses


def run(
    store: Store,
    kind: RunKind = "update",
    *,
    owner: str | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> RunRecord | None:
    """Run Update Now (``kind='update'``) or Rebuild, once another process's run has finished.

    Blocks the calling thread; ``on_progress`` (after each batch) and ``on_wait`` (once, with
    the lease holder, if another run is under way) are called on the calling thread. Returns the
    run's record; None if ``cancel`` was set while waiting for the lease. Per-object failures are
    counted in ``errors``; a failed run (database trouble, lost lease) has outcome 'failed'.
    """
    if kind not in ("update", "rebuild"):
        raise ValueError(f"unknown run kind {kind!r}")
    owner = owner or new_owner()
    cancel = cancel or threading.Event()
    snapshot = _begin(store, kind, owner, cancel, on_wait)
    if snapshot is None:
        return None
    clock = time.perf_counter()
    counts = _Counts()
    outcome: rows.Outcome = "completed"
    message = ""
    try:
        total = len(snapshot.candidates)
        if on_progress:
            on_progress(Progress(snapshot.run_id, kind, 0, total))
        policies: PolicySet | None = None
        for start in range(0, total, batch_size):
            if cancel.is_set():
                outcome = "cancelled"
                break
            ids = snapshot.candidates[start : start + batch_size]
            policies = _batch_with_retry(store, kind, owner, snapshot, ids, counts, policies)
            counts.done += len(ids)
            if on_progress:
                on_progress(Progress(snapshot.run_id, kind, counts.done, total))
    except (PostroomError, sqlite3.Error) as error:
        log.error("RUS run %d failed: %s", snapshot.run_id, error)
        outcome, message = "failed", str(error)
    except BaseException:
        _finish(store, owner, snapshot, counts, "cancelled", "interrupted", clock)
        raise
    return _finish(store, owner, snapshot, counts, outcome, message, clock)


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


def _snapshot(conn: sqlite3.Connection, kind: RunKind, owner: str) -> _Snapshot:
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


def _batch_with_retry(
    store: Store,
    kind: RunKind,
    owner: str,
    snapshot: _Snapshot,
    ids: Sequence[int],
    counts: _Counts,
    policies: PolicySet | None,
) -> PolicySet:
    try:
        return _batch(store, kind, owner, snapshot, ids, counts, policies)
    except sqlite3.IntegrityError as error:
        # Someone wrote an address without taking a change number; read them all and retry.
        log.warning("RUS run %d: %s; reloading the address index", snapshot.run_id, error)
        snapshot.taken.rollback()
        with store.read() as conn:
            snapshot.taken.reload(conn)
        return _batch(store, kind, owner, snapshot, ids, counts, policies)


def _batch(
    store: Store,
    kind: RunKind,
    owner: str,
    snapshot: _Snapshot,
    ids: Sequence[int],
    counts: _Counts,
    policies: PolicySet | None,
) -> PolicySet:
    """Look at one batch of objects and write what they need, in one transaction."""
    taken = snapshot.taken
    batch = _Counts()
    try:
        with store.write() as conn:
            if not rows.renew_lease(conn, owner, time.time(), LEASE_SECONDS):
                raise LeaseLostError(
                    "Another process took over the Recipient Update Service while this run "
                    "was paused for too long; its results so far are kept."
                )
            loaded = policy_rows.load_policies(conn)
            if policies is None or policies.policies != tuple(loaded):
                policies = PolicySet(loaded)
            taken.refresh(conn)
            stamp_usn = current_usn(conn)
            recipients = rows.load_for_stamping(conn, ids)
            verdicts: list[tuple[Recipient, Judgement]] = []
            for recipient in recipients:
                policy = policies.effective(recipient)
                if (
                    kind == "update"
                    and recipient.usn <= snapshot.hwm
                    and not (policy is not None and applied_since_stamp(policy, recipient))
                ):
                    continue  # a candidate only in case it was an applied policy's object
                verdicts.append((recipient, judge(recipient, policy)))
            batch.examined = len(verdicts)
            restamped = [
                int(r.id or 0)
                for r, v in verdicts
                if v.decision == "stamped" and r.stamped_usn is not None
            ]
            old = rows.load_provenance(conn, restamped) if restamped else {}
            demote: list[tuple[int, str]] = []
            promote: list[tuple[int, str, str]] = []
            insert: list[tuple[int, str, str, bool]] = []
            stamped_ids: list[int] = []
            stamp_rows: list[tuple[int, int, str, str, str]] = []
            other_rows: list[tuple[int, int, DecisionKind, str, str]] = []
            run_id = snapshot.run_id
            for recipient, verdict in verdicts:
                rid = int(recipient.id or 0)
                policy = verdict.policy
                name = policy.name if policy else ""
                if verdict.decision != "stamped" or policy is None:
                    other_rows.append((rid, run_id, verdict.decision, name, verdict.reason))
                    continue
                previous = old.get(rid)
                try:
                    stamp = stamp_addresses(
                        conn,
                        recipient,
                        policy,
                        policies.rules(policy),
                        taken,
                        run_id,
                        rows.parse_provenance(previous) if previous else (),
                    )
                except PostroomError as error:
                    batch.errors += 1
                    other_rows.append((rid, run_id, "error", name, str(error)))
                    continue
                for key in stamp.new_keys:
                    taken.assign(key, rid)
                demote += stamp.demote
                promote += stamp.promote
                insert += stamp.insert
                stamped_ids.append(rid)
                reason = verdict.reason
                if stamp.changed:
                    batch.changed += 1
                else:
                    reason += "; its addresses were already current"
                stamp_rows.append(
                    (rid, run_id, name, reason, rows.provenance_json(stamp.provenance))
                )
            rows.write_stamps(conn, demote, promote, insert, stamped_ids, stamp_usn)
            rows.record_stamps(conn, stamp_rows)
            rows.record_decisions(conn, other_rows)
            rows.update_run(
                conn,
                snapshot.run_id,
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
    return policies


def _finish(
    store: Store,
    owner: str,
    snapshot: _Snapshot,
    counts: _Counts,
    outcome: rows.Outcome,
    message: str,
    clock: float,
) -> RunRecord:
    """Record the run's end, advance the high-water mark if it completed, free the lease."""
    duration = time.perf_counter() - clock
    try:
        with store.write() as conn:
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
            rows.release_lease(conn, owner)
            record = rows.find_run(conn, snapshot.run_id)
    except sqlite3.Error as error:
        # The lease runs out by itself; the run's row says 'running' until then.
        log.error("RUS run %d: cannot record its end: %s", snapshot.run_id, error)
        record = None
    if record is None:
        record = RunRecord(
            snapshot.run_id,
            snapshot.kind,
            owner,
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
