"""A domain's DNS details: each check with what was found, what to do, and the record to add."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.dns.findings import CheckResult, Status
from app.dns.health import DnsHealthCache
from ui import icons
from ui.models.domains import (
    CHECKING,
    KIND_TEXT,
    NOT_CHECKED_ROUTE,
    CheckResultModel,
    DomainListModel,
    DomainRow,
    short_time,
)
from ui.widgets import list_view

log = logging.getLogger(__name__)


class DomainDnsDialog(QDialog):
    """What DNS says about one domain and this server; Check Now runs the checks again in the
    background (the dialog stays responsive and fills in when they are done). GUI thread only.

    It follows the Domains list (``domains``: a row says whether its domain is being checked,
    and changes when a check ends), reads the results from ``cache``, and asks ``check`` to
    start a check of a list of domains (False when it cannot start).
    """

    def __init__(
        self,
        parent: QWidget | None,
        domains: DomainListModel,
        cache: DnsHealthCache,
        check: Callable[[list[str]], bool],
        domain: str,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("domainDnsDialog")
        self.domains = domains
        self.cache = cache
        self.check = check
        self.domain = domain
        self.setWindowIcon(icons.icon("check-dns"))

        self.type_label = QLabel(self)
        self.policies_label = QLabel(self)
        self.policies_label.setWordWrap(True)
        self.route_label = QLabel(self)
        self.route_label.setWordWrap(True)
        self.route_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checked_label = QLabel(self)
        form = QFormLayout()
        form.addRow("Type:", self.type_label)
        form.addRow("Policies:", self.policies_label)
        form.addRow("Route onward:", self.route_label)
        form.addRow("Checked:", self.checked_label)

        self.results = CheckResultModel(self)
        self.list = list_view(self, "dnsResults")
        self.list.setModel(self.results)
        self.list.setColumnWidth(CheckResultModel.COL_CHECK, 240)
        self.list.setColumnWidth(CheckResultModel.COL_STATUS, 75)
        self.list.selectionModel().currentRowChanged.connect(self._show_advice)

        self.advice = QLabel(self)
        self.advice.setObjectName("dnsAdvice")
        self.advice.setWordWrap(True)
        self.advice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.record = QPlainTextEdit(self)
        self.record.setObjectName("dnsRecord")
        self.record.setReadOnly(True)
        self.record.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.record.setMaximumHeight(70)
        self.record.setPlaceholderText("No record to add.")
        self.copy_button = QPushButton("&Copy Record", self)
        self.copy_button.clicked.connect(self.copy_record)
        advice_box = QGroupBox("What to do", self)
        advice_layout = QVBoxLayout(advice_box)
        advice_layout.addWidget(self.advice)
        record_row = QHBoxLayout()
        record_row.addWidget(self.record, 1)
        record_row.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)
        advice_layout.addLayout(record_row)

        self.check_button = QPushButton(icons.icon("check-dns"), "Check &Now", self)
        self.check_button.clicked.connect(self.check_now)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.check_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.list, 1)
        layout.addWidget(advice_box)
        layout.addWidget(buttons)
        for signal in self._list_signals():
            signal.connect(self.reload)
        self.resize(780, 540)
        self.reload()

    # -- showing ---------------------------------------------------------------------------

    def _list_signals(self) -> tuple[Any, ...]:
        """The Domains list's changes that can change what this dialog shows."""
        model = self.domains
        return (model.dataChanged, model.rowsInserted, model.rowsRemoved, model.modelReset)

    def _row(self) -> DomainRow | None:
        number = self.domains.row_of(self.domain)
        return self.domains.row_object(number) if number is not None else None

    def reload(self, *_: object) -> None:
        """Show the list's current row and cached results for the domain."""
        row = self._row()
        shown = row.shown if row is not None else self.domain
        self.setWindowTitle(f"{shown} DNS")
        checking = row is not None and row.checking
        self.check_button.setEnabled(not checking and row is not None)
        if row is None:
            self.type_label.setText("No policy names this domain any more.")
            self.policies_label.setText("")
            self.route_label.setText("")
        else:
            self.type_label.setText(KIND_TEXT[row.kind])
            self.policies_label.setText(", ".join(row.policies))
            if row.kind == "shared":
                self.route_label.setText((row.route or NOT_CHECKED_ROUTE).text)
            elif row.kind == "unused":
                self.route_label.setText(row.flag_text())
            else:
                self.route_label.setText(
                    "None needed: this organization is responsible for all its mail."
                )
        cached = self.cache.cached(self.domain)
        server = self.cache.cached_server()
        results = list(cached.results) if cached is not None else []
        if server is not None:
            results += list(server.results)
        if checking:
            self.checked_label.setText(CHECKING)
        elif cached is None:
            self.checked_label.setText("Not yet. Check Now asks DNS.")
        else:
            self.checked_label.setText(short_time(cached.checked_at))
        current = self.list.currentIndex().row()
        self.results.set_results(results)
        if results:
            target = current if 0 <= current < len(results) else self._first_problem(results)
            self.list.selectionModel().setCurrentIndex(
                self.results.index(target, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
        self._show_advice()

    @staticmethod
    def _first_problem(results: list[CheckResult]) -> int:
        return next((n for n, r in enumerate(results) if r.status is not Status.OK), 0)

    def _show_advice(self, *_: object) -> None:
        row = self.list.currentIndex().row()
        if row < 0 or row >= self.results.rowCount():
            self.advice.setText("")
            self.record.setPlainText("")
            self.copy_button.setEnabled(False)
            return
        result = self.results.result(row)
        self.advice.setText(result.advice or f"Nothing to do: {result.summary}")
        self.record.setPlainText(result.record)
        self.copy_button.setEnabled(bool(result.record))

    # -- commands --------------------------------------------------------------------------

    def check_now(self) -> None:
        if self.check([self.domain]):
            self.reload()

    def copy_record(self) -> None:
        QGuiApplication.clipboard().setText(self.record.toPlainText())

    # -- entry point -----------------------------------------------------------------------

    @classmethod
    def show_details(
        cls,
        parent: QWidget | None,
        domains: DomainListModel,
        cache: DnsHealthCache,
        check: Callable[[list[str]], bool],
        domain: str,
    ) -> None:
        """Open the details of ``domain`` (A-label) until the administrator closes them."""
        dialog = cls(parent, domains, cache, check, domain)
        try:
            dialog.exec()
        finally:
            for signal in dialog._list_signals():
                signal.disconnect(dialog.reload)
            dialog.deleteLater()
