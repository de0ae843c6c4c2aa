"""Add… on Members / Member Of: find recipients by name, alias or address and pick some."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.directory import listing
from app.directory.listing import RecipientSummary
from app.model import RecipientKind
from app.store import Store
from ui.formatting import plural
from ui.models.recipients import RecipientRefModel
from ui.tasks import TaskRunner
from ui.widgets import SelectionMode, buddy_label, list_view, ok_cancel

log = logging.getLogger(__name__)

MAX_SHOWN = 500
SEARCH_DELAY_MS = 250


def find_recipients(
    store: Store, text: str, kinds: Collection[str], exclude: Collection[int]
) -> tuple[list[RecipientSummary], int]:
    """Task thread: up to ``MAX_SHOWN`` recipients of ``kinds`` matching ``text``, by display
    name, and how many match in all (of every kind)."""
    matching = listing.list_recipient_ids(store, "display", False, text)
    wanted = [rid for rid in matching.ids if rid not in exclude]
    found: list[RecipientSummary] = []
    for start in range(0, len(wanted), MAX_SHOWN):
        page = wanted[start : start + MAX_SHOWN]
        summaries = listing.recipient_summaries(store, page)
        found.extend(s for rid in page if (s := summaries.get(rid)) and s.kind in kinds)
        if len(found) >= MAX_SHOWN:
            break
    return found[:MAX_SHOWN], len(wanted)


class SelectRecipientsDialog(QDialog):
    """ "Select Recipients": type part of a name, pick one or more, OK. GUI thread only."""

    def __init__(
        self,
        parent: QWidget | None,
        store: Store,
        title: str,
        kinds: Sequence[RecipientKind],
        exclude: Collection[int],
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("selectRecipientsDialog")
        self.store = store
        self.kinds = tuple(kinds)
        self.exclude = set(exclude)
        self.tasks = TaskRunner(self, max_threads=1)
        self._searching = False
        self._again = False
        self.search = QLineEdit(self)
        self.search.setObjectName("search")
        self.search.setPlaceholderText("Part of a display name, alias or e-mail address")
        self.find_now = QPushButton("Find &Now", self)
        self.find_now.setObjectName("findNow")
        self.results = RecipientRefModel(self)
        self.view = list_view(self, "results", SelectionMode.ExtendedSelection)
        self.view.setModel(self.results)
        self.view.setColumnWidth(0, 170)
        self.view.setColumnWidth(1, 100)
        self.view.setColumnWidth(2, 120)
        self.view.doubleClicked.connect(lambda _index: self.accept())
        self.status = QLabel(self)
        self.status.setObjectName("status")
        self.buttons = ok_cancel(self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)

        search_row = QHBoxLayout()
        search_row.addWidget(buddy_label("&Name:", self.search, self))
        search_row.addWidget(self.search, 1)
        search_row.addWidget(self.find_now)
        layout = QVBoxLayout(self)
        layout.addLayout(search_row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.run_search)
        self.search.textChanged.connect(lambda _text: self._timer.start())
        self.search.returnPressed.connect(self.run_search)
        self.find_now.clicked.connect(self.run_search)
        self.resize(620, 420)
        self.run_search()

    @property
    def busy(self) -> bool:
        return self._searching or self._timer.isActive()

    def run_search(self) -> None:
        """Find Now: search in the background; the list follows when the store answers."""
        self._timer.stop()
        if self._searching:
            self._again = True
            return
        self._searching = True
        self._again = False
        self.status.setText("Searching...")
        self.tasks.submit(
            "find recipients",
            find_recipients,
            self.store,
            self.search.text().strip(),
            self.kinds,
            self.exclude,
            on_success=self._found,
            on_failure=self._failed,
        )

    def _found(self, result: tuple[list[RecipientSummary], int]) -> None:
        self._searching = False
        if self._again:
            self.run_search()
            return
        found, _matching = result
        self.results.set_rows([])
        self.results.set_rows(found)
        more = (
            " (the first shown; type more to narrow the search)" if len(found) >= MAX_SHOWN else ""
        )
        self.status.setText(plural(len(found), "recipient") + " found" + more)

    def _failed(self, error: Exception) -> None:
        self._searching = False
        self.status.setText(str(error))

    def _selection_changed(self, *_: object) -> None:
        chosen = bool(self.view.selectionModel().selectedRows())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(chosen)

    def chosen(self) -> list[RecipientSummary]:
        rows = sorted(index.row() for index in self.view.selectionModel().selectedRows())
        return [self.results.row_object(row) for row in rows]

    def done(self, result: int) -> None:
        self._timer.stop()
        self.tasks.wait()
        super().done(result)

    @classmethod
    def choose(
        cls,
        parent: QWidget | None,
        store: Store,
        title: str = "Select Recipients",
        kinds: Sequence[RecipientKind] = ("user", "contact", "group"),
        exclude: Collection[int] = (),
    ) -> list[RecipientSummary]:
        """The recipients picked, or [] when cancelled."""
        dialog = cls(parent, store, title, kinds, exclude)
        try:
            return dialog.chosen() if dialog.exec() == QDialog.DialogCode.Accepted else []
        finally:
            dialog.deleteLater()
