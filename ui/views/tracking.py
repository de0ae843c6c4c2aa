"""Tools > Message Tracking Center: what the SMTP service did with each message, searchable.

The list shows the newest entries of the message tracking log that match the search (at first:
every message event), a page at a time; searching and paging read the log on the task runner.
The log is written by the SMTP service of this console or of ``postroom serve`` in another
process, and deliberately does not move the store's change counter, so the view notices new
entries on its own: when the console's SMTP service reports an event, and every
``POLL_INTERVAL_MS`` by the log's newest id (one indexed read).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction

from app.smtp import tracking
from app.smtp.tracking import TrackingQuery, TrackingRow
from app.store import Store
from ui import messages
from ui.actions import MenuEntry, make_action, set_enabled
from ui.dialogs.tracking import MessageHistoryDialog, TrackingSearchDialog
from ui.formatting import plural
from ui.models.tracking import MESSAGE_EVENTS, TrackingEventModel, event_time
from ui.views.base import ResultView
from ui.watcher import POLL_INTERVAL_MS

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

TRACKING_TEXT = "What the SMTP service did with each message"
TOOLS_TEXT = "Tools for following what happens to mail"
PAGE_SIZE = 500
DEFAULT_QUERY = TrackingQuery(events=MESSAGE_EVENTS)


Page = tuple[list[TrackingRow], bool, int]


def read_page(
    store: Store,
    criteria: TrackingQuery,
    before_id: int | None = None,
    after_id: int | None = None,
) -> Page:
    """Worker thread: a page of matching entries (newest first), whether older ones may exist
    (the page was full), and the newest id in the whole log when it was read."""
    with store.read():  # one snapshot: the page and the newest id agree
        rows = tracking.find_entries(
            store, criteria, before_id=before_id, after_id=after_id, limit=PAGE_SIZE
        )
        newest = tracking.newest_id(store)
    return rows, len(rows) == PAGE_SIZE, newest


def describe(criteria: TrackingQuery) -> str:
    """The search in words, for the line above the list."""
    parts = []
    if criteria.sender:
        parts.append(f"sender contains '{criteria.sender}'")
    if criteria.recipient:
        parts.append(f"recipient contains '{criteria.recipient}'")
    if criteria.message_id:
        parts.append(f"Message-ID contains '{criteria.message_id}'")
    if criteria.since:
        parts.append(f"from {_local(criteria.since)}")
    if criteria.until:
        parts.append(f"before {_local(criteria.until)}")
    if set(criteria.events) != set(MESSAGE_EVENTS):
        parts.append("with sessions" if not criteria.events else "some events")
    return ", ".join(parts)


def _local(stamp: str) -> str:
    return event_time(stamp)[:16]


class MessageTrackingView(ResultView):
    """The Message Tracking Center node."""

    default_sort_column = TrackingEventModel.COL_TIME
    default_sort_order = Qt.SortOrder.DescendingOrder
    default_column_widths = (170, 85, 180, 180, 45, 320, 100)

    searched = Signal()
    """A page of the log (a new search, an older page or new entries) is shown."""

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.list_model = TrackingEventModel(self)
        self.model = self.list_model
        self.criteria = DEFAULT_QUERY
        self._generation = 0  # a search started later wins over pages of an earlier one
        self._searching = False
        self._catching_up = False
        self._searched_once = False
        self._newest_seen = 0  # the log's newest id when it was last read
        self._selection: list[int] = []
        self.find = make_action(
            self,
            "&Find Messages...",
            "message-tracking",
            "Ctrl+F",
            "Search the message tracking log by sender, recipient, Message-ID and time",
        )
        self.show_all = make_action(
            self, "Show &All Messages", None, None, "Clear the search: the newest messages"
        )
        self.history = make_action(
            self,
            "Message &History...",
            "properties",
            None,
            "Every entry of the selected message, and the details of this one",
        )
        self.find.triggered.connect(self.ask_search)
        self.show_all.triggered.connect(lambda: self.search(DEFAULT_QUERY))
        self.history.triggered.connect(lambda: self.properties(self._selection))
        self.list_model.fetch_requested.connect(self._fetch_older)
        console.smtp.smtp_event.connect(lambda _event: self._smtp_event())
        self._poll = QTimer(console.window or self)  # ends with the window
        self._poll.setInterval(POLL_INTERVAL_MS)
        self._poll.timeout.connect(self._poll_log)
        self._poll.start()

    # -- searching -------------------------------------------------------------------------

    def refresh(self) -> None:
        """F5: run the current search again."""
        self.search(self.criteria)

    def search(self, criteria: TrackingQuery) -> None:
        """Show the newest entries that match ``criteria`` (read in the background)."""
        self.criteria = criteria
        self._generation += 1
        generation = self._generation
        self._searching = True
        self.list_model.loading = True
        self.status_changed.emit()
        self.console.tasks.submit(
            "search the message tracking log",
            read_page,
            self.console.store,
            criteria,
            on_success=lambda page: self._first_page(generation, page),
            on_failure=lambda error: self._failed(generation, error),
        )

    def _first_page(self, generation: int, page: Page) -> None:
        if generation != self._generation:
            return
        rows, more, self._newest_seen = page
        self._searching = False
        self._searched_once = True
        self.list_model.loading = False
        self.list_model.replace(rows, more)
        self._done()

    def _fetch_older(self) -> None:
        # QTreeView asks for more on every layout, not only when its end is in sight, which
        # would page through the whole log; decide once the layout is done.
        generation = self._generation
        QTimer.singleShot(0, lambda: self._fetch_older_if_wanted(generation))

    def _end_in_sight(self) -> bool:
        """Whether the result pane shows this list scrolled to its end (as the window has it)."""
        window = self.console.window
        result_list = getattr(window, "result_list", None)
        proxy = getattr(window, "proxy", None)
        if result_list is None or proxy is None:
            return True
        if proxy.sourceModel() is not self.list_model:
            return False
        bar = result_list.verticalScrollBar()
        return bool(bar.value() >= bar.maximum())

    def _fetch_older_if_wanted(self, generation: int) -> None:
        if generation != self._generation or self._searching:
            return  # a new search replaces the list; its first page decides about more
        if not self._end_in_sight():
            self.list_model.loading = False  # scrolling to the end asks again
            return
        oldest = self.list_model.oldest_id()
        self.console.tasks.submit(
            "page through the message tracking log",
            read_page,
            self.console.store,
            self.criteria,
            oldest,
            on_success=lambda page: self._older_page(generation, page),
            on_failure=lambda error: self._failed(generation, error),
        )

    def _older_page(self, generation: int, page: Page) -> None:
        if generation != self._generation:
            return
        rows, more, _newest = page
        self.list_model.loading = False
        self.list_model.add_page(rows, more)
        self._done()

    def catch_up(self) -> None:
        """Add the entries written since the newest one shown (in the background)."""
        if self._searching or self._catching_up or not self._searched_once:
            return
        self._catching_up = True
        generation = self._generation
        self.console.tasks.submit(
            "follow the message tracking log",
            read_page,
            self.console.store,
            self.criteria,
            None,
            self._newest_seen,
            on_success=lambda page: self._caught_up(generation, page),
            on_failure=lambda error: self._failed(generation, error),
        )

    def _caught_up(self, generation: int, page: Page) -> None:
        self._catching_up = False
        if generation != self._generation:
            return
        rows, full, newest = page
        if full:
            # More than a page arrived at once: start from the top rather than leave a gap.
            self.search(self.criteria)
            return
        self._newest_seen = max(self._newest_seen, newest)
        self.list_model.add_page(rows)
        self._done()

    def _failed(self, generation: int, error: Exception) -> None:
        self._catching_up = False
        if generation != self._generation:
            return
        self._searching = False
        self.list_model.loading = False
        self.status_changed.emit()
        messages.error(self.parent_widget, f"Cannot read the message tracking log: {error}")

    def _done(self) -> None:
        self.status_changed.emit()
        self.actions_changed.emit()
        self.searched.emit()

    def _smtp_event(self) -> None:
        if self.is_current():
            self.catch_up()

    def _poll_log(self) -> None:
        """GUI thread, every half second while shown: one indexed read of the newest id."""
        if not self._searched_once or not self.is_current():
            return
        try:
            newest = tracking.newest_id(self.console.store)
        except Exception:  # the store may be closing with the window
            log.debug("cannot read the tracking log's newest id", exc_info=True)
            return
        if newest > self._newest_seen:
            self.catch_up()

    # -- what the list shows ---------------------------------------------------------------

    def status_text(self) -> str:
        if self._searching:
            return "Searching..."
        text = plural(self.list_model.rowCount(), "entry", "entries")
        if self.list_model.more:
            text += " (scroll down for older ones)"
        searched = describe(self.criteria)
        return f"{text} - {searched}" if searched else text

    def is_busy(self) -> bool:
        return self._searching or self._catching_up or self.list_model.loading

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        self._selection = list(rows)
        set_enabled(self.find, True)
        set_enabled(self.show_all, self.criteria != DEFAULT_QUERY, "All messages are shown.")
        set_enabled(self.history, len(rows) == 1)
        set_enabled(self.std.properties, len(rows) == 1)

    def node_menu(self) -> list[MenuEntry]:
        return [self.find, self.show_all, None, self.std.refresh, self.std.export_list]

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [self.history, None, self.find, self.show_all, None, self.std.refresh]

    def toolbar_actions(self) -> list[QAction]:
        return [self.find]

    def ask_search(self) -> None:
        criteria = TrackingSearchDialog.ask(self.parent_widget, self.criteria)
        if criteria is not None:
            self.search(criteria)

    def properties(self, rows: list[int]) -> None:
        """Double-click, Enter or Message History: the entry and the rest of its message."""
        if len(rows) != 1:
            return
        MessageHistoryDialog.show_history(
            self.parent_widget,
            self.console.store,
            self.console.tasks,
            self.list_model.row_object(rows[0]),
        )
