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

Speed (a 100,000-object Rebuild, see benchmarks/rus.py): big runs load every proxy address once
into an index kept up to date per batch, remember how far each much-shared name's suffixes go,
let a helper process (``prepare``) work out policies and local parts ahead, and write each slice
of a batch on a second thread while the next slice is worked out, in the same transaction.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache

from app.directory import addressing
from app.directory.addressing import AddressTemplate, NameValues
from app.directory.filters import And, LdapFilter, Not, Or, Presence, attribute_names
from app.errors import PostroomError
from app.model import SMTP, Recipient, RecipientPolicy
from app.policies import compiled_filter, now
from app.rus.prepare import HELPER_MIN_OBJECTS, PreparedBatch, Preparer, helper_possible
from app.store import Store
from app.store import policies as policy_rows
from app.store import rus as rows
from app.store.database import current_usn
from app.store.rus import DecisionKind, Provenance, RunKind, RunRecord, address_key

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
        self._by_id = {policy.id: policy for policy in self.policies}

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

    def by_id(self, policy_id: int | None) -> RecipientPolicy | None:
        return self._by_id.get(policy_id)

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
    return _applied_since(policy, recipient.stamped_usn)


def _applied_since(policy: RecipientPolicy, stamped_usn: int | None) -> bool:
    return (
        policy.apply_pending
        and policy.applied_usn is not None
        and (stamped_usn is None or policy.applied_usn > stamped_usn)
    )


@dataclass(frozen=True)
class Judgement:
    """What the rules of DESIGN §5 say about one object: its decision and why."""

    decision: DecisionKind
    policy: RecipientPolicy | None
    reason: str


def judge(recipient: Recipient, policy: RecipientPolicy | None) -> Judgement:
    """Apply the per-object rules to a recipient whose effective policy is ``policy``."""
    return _judge(recipient.auto_update, recipient.stamped_usn, bool(recipient.addresses), policy)


def _judge(
    auto_update: bool, stamped_usn: int | None, has_address: bool, policy: RecipientPolicy | None
) -> Judgement:
    if not auto_update:
        return Judgement(
            "skipped",
            policy,
            "'Automatically update e-mail addresses based on recipient policy' is off",
        )
    if policy is None:
        return Judgement("skipped", None, "no recipient policy's filter matches it")
    if stamped_usn is None:
        return Judgement("stamped", policy, "it had never been stamped")
    if not has_address:
        return Judgement("stamped", policy, "it had no e-mail address")
    if _applied_since(policy, stamped_usn):
        return Judgement(
            "stamped",
            policy,
            f"its policy was applied (change {policy.applied_usn}) after it was last stamped "
            f"(change {stamped_usn})",
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
        self.sql_lock = threading.Lock()  # the batch's writer thread shares the connection
        self._pending: dict[str, int] = {}  # assignments of this batch, when not preloaded
        self._undo: list[tuple[str, int | None]] = []  # to take them back, when preloaded
        self._seen_usn = seen_usn
        self._changed: set[int] = set()
        # Plain address key → h: every suffix 2 … h-1 of it is known to be someone's. Many people
        # share a name, so without this the n-th John Smith would try n suffixes.
        self._hints: dict[str, int] = {}

    @property
    def preloaded(self) -> bool:
        return self._owners is not None

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
        self._undo.clear()
        self._changed.clear()
        self._hints.clear()
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
        with self.sql_lock:
            owner = rows.address_owner_id(conn, type_, address)
        if self._owners is not None:
            if owner is None:
                self._owners.pop(key, None)
                self._hints.clear()  # a suffix may have become free
            else:
                self._owners[key] = owner
        return owner is not None and owner != by

    def first_free(
        self, conn: sqlite3.Connection, plain: str, by: int, own: Callable[[], Iterable[str]]
    ) -> tuple[str, int]:
        """``addressing.first_free`` for recipient ``by``: the plain SMTP address if no one else
        has it, else the lowest suffix 2, 3, … free for ``by``.

        ``own()``: keys of the addresses ``by`` has or was just given, which are free for it.
        """
        owners = self._owners
        if owners is None:

            def taken(address: str) -> bool:
                return self.is_taken(conn, SMTP, address, by)

            return addressing.first_free(plain, taken)
        # Preloaded: plain dict lookups, the database only for owners changed during the run.
        changed = self._changed
        plain_key = "SMTP:" + plain.lower()
        owner = owners.get(plain_key)
        if owner is None or owner == by:
            return plain, 0
        if owner in changed and not self.is_taken(conn, SMTP, plain, by):
            return plain, 0
        start = self._hints.get(plain_key, 2)
        if start > 2:
            # Below the hint every suffix is someone's: only ``by``'s own are free for it.
            domain = "@" + plain.rpartition("@")[2].lower()
            mine = [
                n
                for key in own()
                if key.endswith(domain) and (n := _suffix_of(plain, key)) is not None and n < start
            ]
            if mine:
                return addressing.with_suffix(plain, min(mine)), min(mine)
        for n in range(start, addressing.MAX_SUFFIX + 1):
            candidate = addressing.with_suffix(plain, n)
            owner = owners.get("SMTP:" + candidate.lower())
            if (
                owner is None
                or owner == by
                or (owner in changed and not self.is_taken(conn, SMTP, candidate, by))
            ):
                self._hints[plain_key] = n
                return candidate, n
        return addressing.first_free(plain, lambda a: self.is_taken(conn, SMTP, a, by))

    def assign(self, key: str, owner: int, plain: str = "", suffix: int = 0) -> None:
        """``key`` is now ``owner``'s (written when the batch commits)."""
        if self._owners is None:
            self._pending[key] = owner
        else:
            self._undo.append((key, self._owners.get(key)))
            self._owners[key] = owner
        if suffix:
            plain_key = address_key(SMTP, plain)
            if self._hints.get(plain_key) == suffix:
                self._hints[plain_key] = suffix + 1

    def commit(self) -> None:
        """The batch was written: its assignments are now facts."""
        self._pending.clear()
        self._undo.clear()

    def rollback(self) -> None:
        """The batch was not written: forget its assignments."""
        self._pending.clear()
        if self._owners is not None:
            for key, previous in reversed(self._undo):
                if previous is None:
                    self._owners.pop(key, None)
                else:
                    self._owners[key] = previous
        self._undo.clear()
        self._hints.clear()


def _suffix_of(plain: str, key: str) -> int | None:
    """n if the address keyed ``key`` is ``with_suffix(plain, n)`` for some n >= 2."""
    address = key.partition(":")[2]
    plain_local, _, domain = plain.lower().rpartition("@")
    # A suffix replaces at most the last 6 characters of a full-length local part.
    if not address.endswith("@" + domain) or not address.startswith(plain_local[:58]):
        return None
    local = address.rpartition("@")[0]
    digits = len(local) - len(local.rstrip("0123456789"))
    for width in range(1, digits + 1):
        n = int(local[-width:])
        if n >= 2 and addressing.with_suffix(plain, n).lower() == address:
            return n
    return None


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
    new: list[tuple[str, str, int]]
    """(key, plain address, suffix) of each address the recipient did not have."""

    @property
    def changed(self) -> bool:
        return bool(self.demote or self.promote or self.insert)


Address = tuple[str, str, bool]
"""A proxy address as the run handles it: (type, address, primary)."""


def stamp_addresses(
    conn: sqlite3.Connection,
    rid: int,
    addresses: Sequence[Address],
    values: NameValues | None,
    policy: RecipientPolicy,
    rules: Sequence[ActiveRule],
    taken: TakenAddresses,
    run_id: int,
    old_provenance: Sequence[Provenance] = (),
    local_parts: dict[str, str] | None = None,
) -> Stamp:
    """Work out recipient ``rid``'s new addresses under ``policy``; AddressError if it cannot.

    ``addresses`` are those it has; ``rules`` are ``active_rules(policy)``; ``local_parts`` may
    hold local parts generated ahead (template → local part), the others are made from
    ``values``. Every generated address is added unless the recipient has it already; the
    primary rule's address becomes the primary SMTP address.
    """
    present: dict[str, Address] = {address_key(a[0], a[1]): a for a in addresses}
    local_parts = {} if local_parts is None else local_parts
    made: dict[str, Provenance] = {}
    new: dict[str, str] = {}
    fresh: list[tuple[str, str, int]] = []
    primary_key: str | None = None
    for rule in rules:
        template = rule.template
        local = local_parts.get(template.local_template)
        if local is None:
            if values is None:
                raise ValueError("stamp_addresses needs the name values or the local parts")
            local = addressing.generate_local_part(template, values)
            local_parts[template.local_template] = local
        plain = f"{local}@{template.domain}"
        address, suffix = taken.first_free(conn, plain, rid, lambda: [*present, *new])
        key = "SMTP:" + address.lower()
        existing = present.get(key)
        if existing is not None:
            address = existing[1]  # keep the spelling it has
        elif key in new:
            address = new[key]
        else:
            new[key] = address
            fresh.append((key, plain, suffix))
        if key not in made:
            made[key] = Provenance(
                SMTP, address, policy.name, rule.text, suffix, run_id, plain if suffix else ""
            )
        if rule.primary:
            primary_key = key

    stamp = Stamp([], [], [], [], fresh)
    new_primary = None
    if primary_key is not None:
        current = None
        for k, (type_, _, primary) in present.items():
            if primary and type_.upper() == SMTP:
                current = k
        if current != primary_key:
            if current is not None:
                stamp.demote.append((rid, present[current][0]))
            if primary_key in present:
                type_, address, _ = present[primary_key]
                stamp.promote.append((rid, type_, address))
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


@dataclass
class _Writes:
    """What a slice of a batch writes."""

    demote: list[tuple[int, str]] = field(default_factory=list)
    promote: list[tuple[int, str, str]] = field(default_factory=list)
    insert: list[tuple[int, str, str, bool]] = field(default_factory=list)
    stamped: list[int] = field(default_factory=list)
    stamps: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    others: list[tuple[int, int, DecisionKind, str, str]] = field(default_factory=list)

    def write(self, conn: sqlite3.Connection, stamp_usn: int) -> None:
        rows.write_stamps(conn, self.demote, self.promote, self.insert, self.stamped, stamp_usn)
        rows.record_stamps(conn, self.stamps)
        rows.record_decisions(conn, self.others)


class _Writer:
    """Writes slices of a batch on a thread of its own, in the batch's transaction.

    The run's thread hands over one slice and works out the next meanwhile; ``lock`` keeps the
    two from using the connection at the same moment. Leaving the ``with`` block waits for every
    write and raises the first error, so the batch commits only what was written. Without
    ``overlap`` each slice is written at once on the calling thread.
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock, overlap: bool) -> None:
        self._conn = conn
        self._lock = lock
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rus-writer") if overlap else None
        )
        self._pending: list[Future[None]] = []

    def submit(self, writes: _Writes, stamp_usn: int) -> None:
        if self._pool is None:
            writes.write(self._conn, stamp_usn)
            return
        self._raise_done()
        self._pending.append(self._pool.submit(self._write, writes, stamp_usn))

    def _write(self, writes: _Writes, stamp_usn: int) -> None:
        with self._lock:
            writes.write(self._conn, stamp_usn)

    def _raise_done(self) -> None:
        for future in self._pending:
            if future.done() and future.exception() is not None:
                self._wait()
                future.result()

    def _wait(self) -> None:
        wait(self._pending)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is None:
            return
        self._wait()  # never leave the transaction while a write is under way
        self._pool.shutdown(wait=True)
        if exc_info[0] is None:
            for future in self._pending:
                future.result()


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
    except sqlite3.Error as error:
        raise PostroomError(
            f"The Recipient Update Service cannot start a run: {error}. "
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
        except (PostroomError, sqlite3.Error) as error:
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
        except sqlite3.IntegrityError as error:
            # Someone wrote an address without taking a change number: read them all, retry.
            log.warning("RUS run %d: %s; reloading the address index", self.snapshot.run_id, error)
            self.snapshot.taken.rollback()
            with self.store.read() as conn:
                self.snapshot.taken.reload(conn)
            self._batch(ids, None)

    def _load(
        self,
        conn: sqlite3.Connection,
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
                        and not (policy is not None and _applied_since(policy, obj.stamped_usn))
                    ):
                        continue  # a candidate only in case it was an applied policy's object
                    verdict = _judge(obj.auto_update, obj.stamped_usn, bool(obj.addresses), policy)
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
                with _Writer(conn, taken.sql_lock, overlap=taken.preloaded) as writer:
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
        conn: sqlite3.Connection,
        verdicts: Sequence[tuple[_Object, Judgement]],
        old: dict[int, str],
        policies: PolicySet,
        batch: _Counts,
    ) -> _Writes:
        """Work out the writes for some objects of the batch (Python only, no SQL)."""
        taken = self.snapshot.taken
        run_id = self.snapshot.run_id
        writes = _Writes()
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
        except sqlite3.Error as error:
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
