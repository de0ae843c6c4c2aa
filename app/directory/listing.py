"""The All Recipients list: which recipients match a text, in which order, and each row's
summary (alias, type, primary SMTP address, effective policy), read a page at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from app.errors import PostroomError
from app.model import Recipient, RecipientKind, RecipientPolicy
from app.policies.effective import PolicySet
from app.store import Connection, Store
from app.store import directory as rows
from app.store import policies as policy_rows

ListSort = Literal["display", "alias", "type", "address", "policy"]
LIST_SORTS: tuple[ListSort, ...] = ("display", "alias", "type", "address", "policy")


@dataclass(frozen=True)
class RecipientListing:
    """Which recipients a list shows and in what order: ids and shown names, side by side."""

    ids: list[int]
    names: list[str]
    """Each recipient's display name (its alias when it has none)."""
    total: int
    """How many recipients the directory holds, filter or not."""


@dataclass(frozen=True)
class RecipientSummary:
    """What one row of All Recipients shows of a recipient."""

    id: int
    alias: str
    kind: RecipientKind
    display_name: str
    primary_smtp: str | None
    policy: str | None
    """The effective recipient policy's name; None when no policy's filter matches."""
    auto_update: bool


def list_recipient_ids(
    store: Store, sort: ListSort = "display", descending: bool = False, text: str = ""
) -> RecipientListing:
    """The recipients whose display name, alias or an address contains ``text``, sorted.

    Sorting by display name, alias, type or primary SMTP address happens in the database (a
    fraction of a second for 100,000 recipients); sorting by policy evaluates every matching
    recipient's effective policy (seconds): run it off the GUI thread.
    """
    if sort not in LIST_SORTS:
        raise PostroomError(f"'{sort}' is not a column to sort by. Use one of: {LIST_SORTS}.")
    text = text.strip()
    with store.read() as conn:
        total = rows.recipient_count(conn)
        if sort != "policy":
            index = rows.recipient_index(conn, sort, text)
        else:
            index = _sorted_by_policy(conn, rows.recipient_index(conn, "display", text))
    if descending:
        index.reverse()
    return RecipientListing([rid for rid, _ in index], [name for _, name in index], total)


def _sorted_by_policy(conn: Connection, index: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``index`` (sorted by display name) stably re-sorted by effective policy name."""
    policy_set = PolicySet(policy_rows.load_policies(conn))
    policy_of: dict[int, str] = {}
    for start in range(0, len(index), 2000):
        chunk = [rid for rid, _ in index[start : start + 2000]]
        for recipient in rows.recipients_by_id(conn, chunk):
            policy = policy_set.effective(recipient)
            # No policy sorts last, after every policy name.
            policy_of[int(recipient.id or 0)] = policy.name.casefold() if policy else "\uffff"
    return sorted(index, key=lambda item: policy_of.get(item[0], "\uffff"))


class SummaryReader:
    """Reads list rows a page at a time, keeping the compiled policies and the effective
    policies found between pages (until the policies change). One per list; any thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._policies: list[RecipientPolicy] | None = None
        self._policy_set: PolicySet | None = None

    def read(self, ids: Iterable[int]) -> dict[int, RecipientSummary]:
        """The list rows of these recipients (those that still exist), by id."""
        with self.store.read() as conn:
            found = rows.recipients_by_id(conn, ids)
            return {s.id: s for s in self._summaries(conn, found)}

    def read_aliases(self, aliases: Iterable[str]) -> list[RecipientSummary]:
        """The list rows of the recipients with these aliases (those that exist), in order."""
        with self.store.read() as conn:
            found = [rows.find_recipient(conn, alias.strip()) for alias in aliases]
            return self._summaries(conn, [r for r in found if r is not None])

    def _summaries(self, conn: Connection, found: Sequence[Recipient]) -> list[RecipientSummary]:
        if not found:
            return []
        policies = policy_rows.load_policies(conn)
        if self._policy_set is None or policies != self._policies:
            self._policies, self._policy_set = policies, PolicySet(policies)
        policy_set = self._policy_set
        summaries = []
        for recipient in found:
            policy = policy_set.effective(recipient)
            summaries.append(
                RecipientSummary(
                    id=int(recipient.id or 0),
                    alias=recipient.alias,
                    kind=recipient.kind,
                    display_name=recipient.display_name,
                    primary_smtp=recipient.primary_address(),
                    policy=policy.name if policy else None,
                    auto_update=recipient.auto_update,
                )
            )
        return summaries


def recipient_summaries(store: Store, ids: Iterable[int]) -> dict[int, RecipientSummary]:
    """The list rows of these recipients (those that still exist), by id."""
    return SummaryReader(store).read(ids)


def summaries_by_alias(store: Store, aliases: Iterable[str]) -> list[RecipientSummary]:
    """The list rows of the recipients with these aliases (those that exist), in that order."""
    return SummaryReader(store).read_aliases(aliases)
