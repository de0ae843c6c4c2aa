"""Properties of the Recipient Update Service: update interval, weekly schedule grid, last run."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    Qt,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.rus.schedule import (
    EMPTY_WEEK,
    MODE_LABELS,
    MODES,
    Schedule,
    Week,
    format_week,
    make_schedule,
)
from app.store import RunRecord
from ui import messages
from ui.dialogs.property_sheet import PropertyPage, PropertySheet
from ui.formatting import local_time
from ui.models.schedule import ScheduleModel
from ui.widgets import buddy_label, ok_cancel

log = logging.getLogger(__name__)


class ScheduleDialog(QDialog):
    """ "Schedule": select hours and mark them to run or not."""

    def __init__(self, parent: QWidget | None, week: Week) -> None:
        super().__init__(parent)
        self.setWindowTitle("Schedule")
        self.setObjectName("scheduleDialog")
        self.model = ScheduleModel(week, self)
        self.grid = QTableView(self)
        self.grid.setObjectName("grid")
        self.grid.setModel(self.model)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        cell = 24
        horizontal, vertical = self.grid.horizontalHeader(), self.grid.verticalHeader()
        horizontal.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        horizontal.setMinimumSectionSize(cell)
        horizontal.setDefaultSectionSize(cell)
        vertical.setDefaultSectionSize(cell)
        self.grid.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.grid.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        frame = 2 * self.grid.frameWidth()
        self.grid.setFixedSize(
            vertical.sizeHint().width() + 24 * cell + frame,
            horizontal.sizeHint().height() + 7 * cell + frame,
        )
        self.grid.doubleClicked.connect(self._toggle)
        self.run_button = QPushButton("&Run", self)
        self.run_button.setObjectName("run")
        self.no_run_button = QPushButton("&Don't Run", self)
        self.no_run_button.setObjectName("noRun")
        self.run_button.clicked.connect(lambda: self._mark(True))
        self.no_run_button.clicked.connect(lambda: self._mark(False))
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.model.dataChanged.connect(self._summarise)
        buttons = ok_cancel(self)
        side = QVBoxLayout()
        side.addWidget(self.run_button)
        side.addWidget(self.no_run_button)
        side.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.grid, 1)
        middle.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel("Select hours (drag across the grid), then choose Run or Don't Run.", self)
        )
        layout.addLayout(middle)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        self._summarise()

    def _summarise(self, *_: object) -> None:
        self.summary.setText(f"Runs: {format_week(self.model.week())}")

    def _mark(self, run: bool) -> None:
        self.model.set_cells(self.grid.selectionModel().selectedIndexes(), run)

    def _toggle(self, index: QModelIndex) -> None:
        self.model.set_cells([index], not bool(index.data(Qt.ItemDataRole.UserRole)))

    def select(self, day: int, first_hour: int, last_hour: int) -> None:
        """Select hours of one day (as dragging does)."""
        for hour in range(first_hour, last_hour + 1):
            self.grid.selectionModel().select(
                self.model.index(day, hour), QItemSelectionModel.SelectionFlag.Select
            )

    @classmethod
    def edit(cls, parent: QWidget | None, week: Week) -> Week | None:
        dialog = cls(parent, week)
        try:
            if dialog.exec() == QDialog.DialogCode.Accepted:
                return dialog.model.week()
            return None
        finally:
            dialog.deleteLater()


class RusGeneralPage(PropertyPage[Schedule]):
    """Name and update interval (with Customize… for the weekly grid)."""

    title = "General"

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit(name, self)
        self.name.setReadOnly(True)
        self.interval = QComboBox(self)
        self.interval.setObjectName("interval")
        for mode in MODES:
            self.interval.addItem(MODE_LABELS[mode], mode)
        self.customize = QPushButton("C&ustomize...", self)
        self.customize.setObjectName("customize")
        self.week_text = QLabel(self)
        self.week_text.setWordWrap(True)
        self.week: Week = EMPTY_WEEK
        self.interval.currentIndexChanged.connect(self._interval_changed)
        self.customize.clicked.connect(self.edit_week)
        interval_row = QHBoxLayout()
        interval_row.addWidget(self.interval, 1)
        interval_row.addWidget(self.customize)
        form = QFormLayout(self)
        form.addRow("Name:", self.name)
        form.addRow(buddy_label("&Update interval:", self.interval, self), interval_row)
        form.addRow("", self.week_text)

    def _interval_changed(self, *_: object) -> None:
        self._show_week()
        self.changed.emit()

    def _show_week(self) -> None:
        custom = self.interval.currentData() == "custom"
        self.week_text.setText(f"Runs: {format_week(self.week)}" if custom else "")

    def load(self, obj: Schedule) -> None:
        self.week = obj.week
        self.interval.blockSignals(True)
        self.interval.setCurrentIndex(max(self.interval.findData(obj.mode), 0))
        self.interval.blockSignals(False)
        self._show_week()

    def apply(self, obj: Schedule) -> Schedule:
        mode = str(self.interval.currentData())
        return dataclasses.replace(
            obj,
            mode=mode,  # type: ignore[arg-type]  # checked by make_schedule on commit
            week=self.week if mode == "custom" else EMPTY_WEEK,
        )

    def edit_week(self) -> None:
        week = ScheduleDialog.edit(self, self.week)
        if week is None:
            return
        self.week = week
        custom = self.interval.findData("custom")
        if self.interval.currentIndex() != custom:
            self.interval.setCurrentIndex(custom)  # emits changed
        else:
            self._show_week()
            self.changed.emit()


class RusStatusPage(PropertyPage[Schedule]):
    """The last run: when, how long, how many objects examined and changed, errors."""

    title = "Status"

    def __init__(self, last_run: RunRecord | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        if last_run is None:
            form.addRow(QLabel("The service has not run yet.", self))
            return
        duration = f"{last_run.duration:.1f} s" if last_run.duration is not None else "-"
        rows = (
            ("Last run:", local_time(last_run.finished or last_run.started)),
            ("Kind:", "Rebuild" if last_run.kind == "rebuild" else "Update Now"),
            ("Outcome:", last_run.outcome + (f": {last_run.message}" if last_run.message else "")),
            ("Duration:", duration),
            ("Objects examined:", f"{last_run.examined:,}"),
            ("Objects changed:", f"{last_run.changed:,}"),
            ("Errors:", f"{last_run.errors:,}"),
        )
        for label, value in rows:
            field = QLabel(value, self)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, field)

    def load(self, obj: Schedule) -> None:
        pass

    def apply(self, obj: Schedule) -> Schedule:
        return obj


class RusPropertiesDialog(PropertySheet[Schedule]):
    """The Recipient Update Service's property sheet."""

    def __init__(
        self,
        parent: QWidget | None,
        name: str,
        schedule: Schedule,
        last_run: RunRecord | None,
        save: Any,
    ) -> None:
        super().__init__(parent, f"{name} Properties", schedule)
        self.setObjectName("rusPropertiesDialog")
        self._save = save
        self.general = RusGeneralPage(name, self)
        self.add_page(self.general)
        self.add_page(RusStatusPage(last_run, self))
        self.load_pages()
        self.resize(480, 300)

    def commit(self, obj: Schedule) -> Schedule:
        checked = make_schedule(obj.mode, obj.week if obj.mode == "custom" else None)
        if checked.warning and checked.mode != self.obj.mode:
            messages.warn(self, checked.warning)
        self._save(checked)
        return checked

    @classmethod
    def edit(
        cls,
        parent: QWidget | None,
        name: str,
        schedule: Schedule,
        last_run: RunRecord | None,
        save: Any,
    ) -> Schedule | None:
        """The schedule as saved (through ``save(schedule)``), or None if nothing changed."""
        dialog = cls(parent, name, schedule, last_run, save)
        try:
            dialog.exec()
            return dialog.result_obj
        finally:
            dialog.deleteLater()
