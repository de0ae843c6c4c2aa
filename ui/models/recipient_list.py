"""All Recipients as a lazy list: the order comes from the store, rows a page at a time.

With 100,000 recipients neither loading every recipient nor sorting them in Qt is affordable,
so the list holds only the ids and display names of the recipients it shows, in order (one
query, run off the GUI thread by the task runner), and fetches what the other columns show a
page at a time when the view first asks for a row (a few milliseconds on the GUI thread).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from functools import cache
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont

from app.directory import listing
from app.directory.listing import LIST_SORTS, ListSort, RecipientListing, RecipientSummary
from app.store import Store
from ui import icons
from ui.models.recipients import recipient_text
from ui.models.table import OBJECT_ROLE, SORT_ROLE, HeaderedTableModel, Index
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)

_Fetched = tuple[RecipientSummary, tuple[str, ...]]
"""A fetched row: what it is, and the text of each column."""

_TEXT_ROLES = frozenset({int(Qt.ItemDataRole.DisplayRole), int(SORT_ROLE)})
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_FONT = int(Qt.ItemDataRole.FontRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ROLES = _TEXT_ROLES | {_DECORATION, _FONT, _TOOLTIP, int(OBJECT_ROLE)}


@cache
def _italic() -> QFont:
    font = QFont()
    font.setItalic(True)
    return font


NO_POLICY_TIP = "No recipient policy's filter matches this recipient, so it gets no addresses."
NO_ADDRESS_TIP = "No SMTP address yet: the Recipient Update Service has not stamped it."
MANUAL_TIP = (
    "Automatic updates are off: the Recipient Update Service leaves this recipient's "
    "addresses alone."
)


class RecipientListModel(HeaderedTableModel):
    """Display Name | Alias | Type | Primary SMTP Address | Policy, sorted and filtered by SQL.

    ``reload()`` asks the store (on the task runner) for the ids in the current order; ``loaded``
    follows on the GUI thread. The result pane's proxy leaves sorting to ``sort`` (see
    ``ResultProxyModel``). GUI thread only.

    Not a ``RowTableModel``: that base holds every row's object and answers each role through
    a call per hook, while this list holds only ids and names, fetches the rest a page at a
    time, and answers the painted roles with as few Python calls as it can (100,000 rows). It
    shares the columns and headers (``HeaderedTableModel``).
    """

    COL_DISPLAY, COL_ALIAS, COL_TYPE, COL_ADDRESS, COL_POLICY = range(5)
    HEADERS = ("Display Name", "Alias", "Type", "Primary SMTP Address", "Policy")
    SORT_KEYS: tuple[ListSort, ...] = LIST_SORTS
    """The store's sort key of each column, in column order."""
    PAGE_SIZE = 200
    CACHE_LIMIT = 4000
    """Rows kept fetched; scrolling back past them fetches again."""
    RESET_ABOVE = 24
    """A reload that removes more separate runs of rows than this resets the list instead."""

    sorts_itself = True
    """The result pane's proxy hands sorting and type-ahead to this model."""

    loading = Signal()
    """A reload started (GUI thread)."""
    loaded = Signal()
    """A reload's listing is shown (GUI thread)."""
    failed = Signal(str)
    """A reload was refused; the message says why (GUI thread)."""

    def __init__(self, store: Store, tasks: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._tasks = tasks
        self._ids: list[int] = []
        self._names: list[str] = []
        self._rows_by_id: dict[int, int] | None = None
        self._reader = listing.SummaryReader(store)
        self._cache: OrderedDict[int, _Fetched | None] = OrderedDict()
        self.total = 0
        self.sort_column = self.COL_DISPLAY
        self.sort_order = Qt.SortOrder.AscendingOrder
        self.filter_text = ""
        self._loading = False
        self._again = False
        self._shown_order: tuple[ListSort, bool, str] | None = None
        self.has_loaded = False
        self.last_error = ""

    # -- asking the store ------------------------------------------------------------------

    @property
    def is_loading(self) -> bool:
        return self._loading

    @property
    def is_reordering(self) -> bool:
        """Whether a new sort order or filter is being fetched (the rows shown are the old)."""
        return self._loading and self.has_loaded and self._shown_order != self._order()

    def reload(self) -> None:
        """Fetch the ids again in the current order (after a change, a sort or a filter)."""
        if self._loading:
            self._again = True
            return
        self._loading = True
        self._again = False
        order = self._order()
        self._tasks.submit(
            "list recipients",
            listing.list_recipient_ids,
            self._store,
            *order,
            on_success=lambda listing: self._arrived(order, listing),
            on_failure=self._refused,
        )
        self.loading.emit()

    def _order(self) -> tuple[ListSort, bool, str]:
        return (
            self.SORT_KEYS[self.sort_column],
            self.sort_order == Qt.SortOrder.DescendingOrder,
            self.filter_text,
        )

    def _arrived(self, order: tuple[ListSort, bool, str], listing: RecipientListing) -> None:
        self._loading = False
        self.last_error = ""
        if order == self._order():
            self._show(listing)
            self._shown_order = order
            self.has_loaded = True
        if self._again or order != self._order():
            self.reload()
        else:
            self.loaded.emit()

    def _refused(self, error: Exception) -> None:
        self._loading = False
        self.last_error = str(error)
        log.warning("cannot list recipients: %s", error)
        if self._again:
            self.reload()
        else:
            self.failed.emit(self.last_error)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by a column: the store sorts, the rows follow when it answers."""
        if not 0 <= column < len(self.HEADERS):
            column = self.COL_DISPLAY
        if (column, order) == (self.sort_column, self.sort_order):
            return
        self.sort_column, self.sort_order = column, order
        self.reload()

    def set_filter_text(self, text: str) -> None:
        """Show only the recipients whose display name, alias or an address contains ``text``."""
        text = text.strip()
        if text != self.filter_text:
            self.filter_text = text
            self.reload()

    # -- showing a new listing -------------------------------------------------------------

    def _show(self, listing: RecipientListing) -> None:
        """Make ``listing`` the rows, keeping selections where the rows stay."""
        self.total = listing.total
        old, new = self._ids, listing.ids
        if old == new:
            self._names = list(listing.names)
        elif not old or not new or not self._update_in_place(listing):
            self.beginResetModel()
            self._ids, self._names = list(new), list(listing.names)
            self._rows_by_id = None
            self.endResetModel()
        # Whatever is fetched may be out of date: fetch again what the view shows.
        self._cache.clear()
        if self._ids:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._ids) - 1, len(self.HEADERS) - 1)
            )

    def _update_in_place(self, listing: RecipientListing) -> bool:
        """Remove, append and reorder rows with the signals views need; False when the change
        is too scattered for that to be cheaper than a reset."""
        new_ids = listing.ids
        keep = set(new_ids)
        gone = [row for row, rid in enumerate(self._ids) if rid not in keep]
        runs = _runs(gone)
        if len(runs) > self.RESET_ABOVE:
            return False
        present = set(self._ids)
        name_of = dict(zip(new_ids, listing.names, strict=True))
        added = [rid for rid in new_ids if rid not in present]
        for first, last in reversed(runs):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._ids[first : last + 1]
            del self._names[first : last + 1]
            self._rows_by_id = None
            self.endRemoveRows()
        if added:
            first = len(self._ids)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._ids.extend(added)
            self._names.extend(name_of[rid] for rid in added)
            self._rows_by_id = None
            self.endInsertRows()
        if self._ids != new_ids:
            self._reorder(new_ids, listing.names)
        else:
            self._names = list(listing.names)
        return True

    def _reorder(self, new_ids: Sequence[int], names: Sequence[str]) -> None:
        """The same rows in another order (a sort, or a renamed recipient moving)."""
        self.layoutAboutToBeChanged.emit()
        old_persistent = self.persistentIndexList()
        old_ids = self._ids
        self._ids, self._names = list(new_ids), list(names)
        self._rows_by_id = None
        moved = []
        for index in old_persistent:
            row = self.row_of(old_ids[index.row()]) if index.row() < len(old_ids) else None
            moved.append(QModelIndex() if row is None else self.index(row, index.column()))
        self.changePersistentIndexList(old_persistent, moved)
        self.layoutChanged.emit()

    # -- rows ------------------------------------------------------------------------------

    def row_of(self, key: Hashable) -> int | None:
        """The row of the recipient with this id, if the list shows it."""
        if self._rows_by_id is None:
            self._rows_by_id = {rid: row for row, rid in enumerate(self._ids)}
        return self._rows_by_id.get(key) if isinstance(key, int) else None

    def recipient_id(self, row: int) -> int:
        return self._ids[row]

    def summary(self, row: int) -> RecipientSummary | None:
        """What the row shows (fetching its page if needed); None if it was just deleted."""
        fetched = self._fetched(row)
        return fetched[0] if fetched is not None else None

    def _fetched(self, row: int) -> _Fetched | None:
        rid = self._ids[row]
        try:
            return self._cache[rid]
        except KeyError:
            self._fetch_page(row)
            return self._cache.get(rid)

    def _fetch_page(self, row: int) -> None:
        """GUI thread: one indexed read of the page around ``row`` (a few milliseconds)."""
        start = row - row % self.PAGE_SIZE
        wanted = [
            rid for rid in self._ids[start : start + self.PAGE_SIZE] if rid not in self._cache
        ]
        try:
            found = self._reader.read(wanted)
        except Exception as error:  # the store closing at exit, a disk error: show blanks
            log.warning("cannot read recipients %d..: %s", start, error)
            found = {}
        for rid in wanted:
            summary = found.get(rid)
            self._cache[rid] = (
                None
                if summary is None
                else (summary, tuple(self.display(summary, c) for c in range(len(self.HEADERS))))
            )
        while len(self._cache) > self.CACHE_LIMIT:
            self._cache.popitem(last=False)

    # -- QAbstractTableModel ---------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        # Qt's own index() asks rowCount() and columnCount() first: two more calls into Python
        # for every cell painted.
        if 0 <= row < len(self._ids) and 0 <= column < len(self.HEADERS) and not parent.isValid():
            return self.createIndex(row, column)
        return QModelIndex()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Painting asks for ten roles per cell: the ones shown nothing return first.
        if role not in _ROLES:
            return None
        row, column = index.row(), index.column()
        if not 0 <= row < len(self._ids):
            return None
        if column == self.COL_DISPLAY and role in _TEXT_ROLES:
            return self._names[row]
        fetched = self._fetched(row)
        if fetched is None:
            return None
        summary, texts = fetched
        if role in _TEXT_ROLES:
            return texts[column]
        if role == _DECORATION:
            return icons.icon(summary.kind) if column == self.COL_DISPLAY else None
        if role == _FONT:
            return _italic() if column == self.COL_POLICY and not summary.auto_update else None
        if role == _TOOLTIP:
            return self.tooltip(summary, column)
        return summary  # OBJECT_ROLE

    def display(self, summary: RecipientSummary, column: int) -> str:
        return display_text(summary, column)

    def export_rows(self, columns: Sequence[int]) -> Iterator[list[str]]:
        """The rows as listed now, for Export List; iterate on a worker thread, not this one.

        The ids are taken here (GUI thread); the recipients are read page by page with the
        worker's own store connection when the iterator runs.
        """
        ids = list(self._ids)
        store = self._store

        def rows() -> Iterator[list[str]]:
            reader = listing.SummaryReader(store)
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                found = reader.read(chunk)
                for rid in chunk:
                    summary = found.get(rid)
                    if summary is not None:  # deleted since the list was shown
                        yield [display_text(summary, c) for c in columns]

        return rows()

    def tooltip(self, summary: RecipientSummary, column: int) -> str | None:
        if column == self.COL_ADDRESS and not summary.primary_smtp:
            return NO_ADDRESS_TIP
        if column == self.COL_POLICY:
            if not summary.auto_update:
                return MANUAL_TIP
            if summary.policy is None:
                return NO_POLICY_TIP
            return (
                f"'{summary.policy}' is the highest-priority recipient policy whose filter "
                "matches this recipient."
            )
        return None

    def match(
        self,
        start: Index,
        role: int,
        value: Any,
        hits: int = 1,
        flags: Qt.MatchFlag = Qt.MatchFlag.MatchStartsWith | Qt.MatchFlag.MatchWrap,
    ) -> list[QModelIndex]:
        """Type-ahead on display names without fetching a row: the names are at hand."""
        kind = Qt.MatchFlag(flags.value & 0x0F)
        simple = (
            Qt.MatchFlag.MatchExactly,
            Qt.MatchFlag.MatchContains,
            Qt.MatchFlag.MatchStartsWith,
            Qt.MatchFlag.MatchFixedString,
        )
        if (
            role != Qt.ItemDataRole.DisplayRole
            or start.column() != self.COL_DISPLAY
            or not isinstance(value, str)
            or kind not in simple
        ):
            return super().match(start, role, value, hits, flags)
        sensitive = bool(flags & Qt.MatchFlag.MatchCaseSensitive)
        wanted = value if sensitive else value.casefold()
        rows = len(self._names)
        first = max(start.row(), 0)
        order = range(first, first + rows) if flags & Qt.MatchFlag.MatchWrap else range(first, rows)
        found: list[QModelIndex] = []
        for number in order:
            row = number % rows
            name = self._names[row] if sensitive else self._names[row].casefold()
            if (
                (kind == Qt.MatchFlag.MatchContains and wanted in name)
                or (kind == Qt.MatchFlag.MatchStartsWith and name.startswith(wanted))
                or (
                    kind in (Qt.MatchFlag.MatchExactly, Qt.MatchFlag.MatchFixedString)
                    and name == wanted
                )
            ):
                found.append(self.index(row, self.COL_DISPLAY))
                if hits != -1 and len(found) >= hits:
                    break
        return found


def display_text(summary: RecipientSummary, column: int) -> str:
    """The text of one All Recipients cell (any thread: no Qt involved)."""
    if column == RecipientListModel.COL_POLICY:
        return summary.policy or ""
    return recipient_text(summary, summary.primary_smtp, column)


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Ascending row numbers as runs of consecutive rows, ``(first, last)``."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
