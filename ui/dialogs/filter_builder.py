"""Modify… on a policy's General tab: "Find Recipients", building an LDAP filter and previewing it.

Field / Condition / Value rows are a view of the raw LDAP filter below them: adding a row adds
a term to the filter; a filter typed by hand shows as rows when it is an AND of simple terms.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.directory import recipients
from app.directory.filters import LdapFilter, parse_filter
from app.errors import PostroomError
from app.model import Recipient
from app.store import Store
from ui import messages
from ui.models.conditions import (
    CONDITIONS,
    FIELD_LABELS,
    FIELDS,
    NOT_PRESENT,
    PRESENT,
    ConditionModel,
    combine,
    describe,
    make_condition,
    terms_of,
)
from ui.models.recipients import RecipientMatchModel
from ui.models.table import SORT_ROLE
from ui.tasks import TaskRunner
from ui.widgets import buddy_label, list_view, ok_cancel

log = logging.getLogger(__name__)


class FindRecipientsDialog(QDialog):
    """Build a policy's filter from rows or raw LDAP; Find Now lists whom it matches."""

    def __init__(self, parent: QWidget | None, store: Store, filter_text: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Find Recipients")
        self.setObjectName("findRecipientsDialog")
        self.store = store
        self.result_filter: str | None = None
        self.tasks = TaskRunner(self, max_threads=1)
        self._search_generation = 0

        self.field = QComboBox(self)
        self.field.setObjectName("field")
        for attribute in FIELDS:
            self.field.addItem(f"{FIELD_LABELS.get(attribute, attribute)}", attribute)
        self.condition = QComboBox(self)
        self.condition.setObjectName("condition")
        self.condition.addItems(CONDITIONS)
        self.value = QLineEdit(self)
        self.value.setObjectName("value")
        self.add_button = QPushButton("&Add", self)
        self.remove_button = QPushButton("&Remove", self)
        self.condition.currentTextChanged.connect(self._condition_changed)
        self.add_button.clicked.connect(self.add_condition)
        self.remove_button.clicked.connect(self.remove_condition)
        self.value.returnPressed.connect(self.add_condition)

        self.conditions = ConditionModel(self)
        self.condition_view = list_view(self, "conditions")
        self.condition_view.setModel(self.conditions)
        self.condition_view.header().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.condition_view.setMinimumHeight(90)
        self.conditions_note = QLabel(self)
        self.conditions_note.setWordWrap(True)

        self.raw = QPlainTextEdit(self)
        self.raw.setObjectName("raw")
        self.raw.setMaximumHeight(64)
        self.raw.setPlainText(filter_text)
        self.raw.textChanged.connect(self._raw_changed)

        self.find_button = QPushButton("Find &Now", self)
        self.find_button.setObjectName("findNow")
        self.find_button.clicked.connect(self.find_now)
        self.clear_button = QPushButton("C&lear All", self)
        self.clear_button.clicked.connect(lambda: self.raw.setPlainText(""))
        self.matches = RecipientMatchModel(self)
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(self.matches)
        proxy.setSortRole(SORT_ROLE)
        self.match_view = list_view(self, "matches")
        self.match_view.setModel(proxy)
        self.match_view.setSortingEnabled(True)
        self.match_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        for column, width in enumerate((170, 110, 90)):
            self.match_view.setColumnWidth(column, width)
        self.match_count = QLabel(self)
        self.match_count.setObjectName("matchCount")

        rows_box = QGroupBox("Conditions (all must be true)", self)
        grid = QGridLayout(rows_box)
        grid.addWidget(buddy_label("&Field:", self.field, self), 0, 0)
        grid.addWidget(buddy_label("C&ondition:", self.condition, self), 0, 1)
        grid.addWidget(buddy_label("&Value:", self.value, self), 0, 2)
        grid.addWidget(self.field, 1, 0)
        grid.addWidget(self.condition, 1, 1)
        grid.addWidget(self.value, 1, 2)
        grid.addWidget(self.add_button, 1, 3)
        grid.addWidget(self.condition_view, 2, 0, 1, 3)
        grid.addWidget(self.remove_button, 2, 3, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.conditions_note, 3, 0, 1, 4)
        grid.setColumnStretch(2, 1)

        raw_box = QGroupBox("LDAP filter (RFC 4515)", self)
        raw_layout = QVBoxLayout(raw_box)
        raw_layout.addWidget(self.raw)

        find_row = QHBoxLayout()
        find_row.addWidget(self.match_count, 1)
        find_row.addWidget(self.clear_button)
        find_row.addWidget(self.find_button)

        buttons = ok_cancel(self)

        layout = QVBoxLayout(self)
        layout.addWidget(rows_box)
        layout.addWidget(raw_box)
        layout.addLayout(find_row)
        layout.addWidget(self.match_view, 1)
        layout.addWidget(buttons)
        self.resize(680, 600)
        self._raw_changed()

    # -- rows and raw text -----------------------------------------------------------------

    def filter_text(self) -> str:
        return self.raw.toPlainText().strip()

    def _parsed(self) -> LdapFilter | None:
        """The raw filter parsed, None when empty; a FilterError when malformed."""
        text = self.filter_text()
        return parse_filter(text) if text else None

    def _condition_changed(self, condition: str) -> None:
        self.value.setEnabled(condition not in (PRESENT, NOT_PRESENT))

    def _raw_changed(self) -> None:
        """Show the raw filter as rows when it is an AND of simple terms."""
        try:
            terms = terms_of(self._parsed())
        except PostroomError as error:
            self.conditions.set_rows([])
            self.conditions_note.setText(f"The LDAP filter cannot be read: {error}")
            self.add_button.setEnabled(False)
            return
        rows = [describe(term) for term in terms]
        self.add_button.setEnabled(True)
        if all(row is not None for row in rows):
            self.conditions.set_rows([(n, row) for n, row in enumerate(rows) if row is not None])
            self.conditions_note.setText(
                "" if rows else "No conditions: the policy applies to nobody until you add one."
            )
        else:
            self.conditions.set_rows([])
            self.conditions_note.setText(
                "This filter uses terms the rows cannot show; edit the LDAP filter below. "
                "Add still adds a condition to it."
            )
        self.remove_button.setEnabled(self.conditions.rowCount() > 0)

    def add_condition(self) -> None:
        try:
            condition = make_condition(
                str(self.field.currentData()), self.condition.currentText(), self.value.text()
            )
            terms = terms_of(self._parsed())
        except PostroomError as error:
            messages.error(self, error)
            return
        self.raw.setPlainText(combine([*terms, condition.term]))
        self.value.clear()

    def remove_condition(self) -> None:
        index = self.condition_view.currentIndex()
        if not index.isValid():
            index = self.conditions.index(self.conditions.rowCount() - 1, 0)
            if not index.isValid():
                return
        try:
            terms = terms_of(self._parsed())
        except PostroomError as error:
            messages.error(self, error)
            return
        del terms[index.row()]
        self.raw.setPlainText(combine(terms))

    # -- Find Now --------------------------------------------------------------------------

    def find_now(self) -> None:
        """List the recipients the filter matches; the search runs off the GUI thread."""
        try:
            parsed = self._parsed()
        except PostroomError as error:
            messages.error(self, error)
            return
        if parsed is None:
            self.matches.set_rows([])
            self.match_count.setText("An empty filter matches nobody.")
            return
        self._search_generation += 1
        generation = self._search_generation
        self.find_button.setEnabled(False)
        self.match_count.setText("Searching...")
        self.tasks.submit(
            "find recipients",
            _find,
            self.store,
            parsed,
            on_success=lambda found: self._found(generation, found),
            on_failure=lambda error: self._find_failed(generation, error),
        )

    def _found(self, generation: int, found: list[Recipient]) -> None:
        if generation != self._search_generation:
            return
        self.find_button.setEnabled(True)
        self.matches.set_rows(found)
        count = len(found)
        self.match_count.setText(f"{count} recipient{'' if count == 1 else 's'} found")

    def _find_failed(self, generation: int, error: Exception) -> None:
        if generation != self._search_generation:
            return
        self.find_button.setEnabled(True)
        self.match_count.setText("")
        messages.error(self, error)

    @property
    def searching(self) -> bool:
        return self.tasks.busy

    # -- closing ---------------------------------------------------------------------------

    def accept(self) -> None:
        try:
            parsed = self._parsed()
        except PostroomError as error:
            messages.error(self, error)
            return
        self.result_filter = str(parsed) if parsed is not None else ""
        super().accept()

    def done(self, result: int) -> None:
        self.tasks.shutdown()
        super().done(result)

    @classmethod
    def edit(cls, parent: QWidget | None, store: Store, filter_text: str) -> str | None:
        """The filter as built (canonical RFC 4515 text), or None when cancelled."""
        dialog = cls(parent, store, filter_text)
        try:
            return dialog.result_filter if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()


def _find(store: Store, parsed: LdapFilter) -> list[Recipient]:
    """Worker thread: every recipient the filter matches."""
    return [r for r in recipients.list_recipients(store) if parsed.matches(r.ldap_attributes())]
