"""Recipients > Recipient Update Services through the real window, and a responsive GUI."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from pytestqt.qtbot import QtBot

from app.directory import recipients
from app.model import Recipient
from app.policies import now
from app.rus.schedule import Schedule, load_schedule, save_schedule
from app.store import Store
from app.store import directory as directory_rows
from app.store.database import next_usn
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    double_click_row,
    right_click_row,
    select_row,
)
from ui.dialogs.rus import RusPropertiesDialog, ScheduleDialog
from ui.main_window import MainWindow
from ui.views.rus import RecipientUpdateServicesView

if TYPE_CHECKING:
    from tests.conftest import ConsoleOpener, Prompts  # fixtures' types, not the fixtures

REBUILD = "Rebuild looks at every recipient"


def add_recipients(store: Store, count: int) -> None:
    """Many users at once (one transaction; they need no Maildir for these tests)."""
    stamp = now()
    with store.write() as conn:
        for n in range(count):
            recipient = Recipient(
                alias=f"user{n:05d}",
                attributes={"givenName": f"Given{n}", "sn": f"Surname{n}"},
                created=stamp,
                modified=stamp,
            )
            directory_rows.insert_recipient(conn, recipient, next_usn(conn), None)


@pytest.fixture
def rus_window(store: Store, open_console: ConsoleOpener, prompts: Prompts) -> MainWindow:
    """The window with the Recipient Update Service running (schedule: Never, so only the
    console's requests start runs) and no SMTP service."""
    save_schedule(store, Schedule("never"))
    shown = open_console(services=False)
    shown.console.rus.start()
    shown.select_node("recipients/update-services")
    return shown


def service_name(window: MainWindow) -> str:
    return str(window.proxy.index(0, 0).data())


def test_list_shows_the_service_with_interval_last_run_and_status(
    rus_window: MainWindow,
) -> None:
    proxy = rus_window.proxy
    headers = [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(4)]
    assert headers == ["Name", "Update Interval", "Last Run", "Status"]
    assert service_name(rus_window).startswith("Recipient Update Service (")
    assert proxy.index(0, 1).data() == "Never run"
    assert proxy.index(0, 3).data() == "Never run"
    assert rus_window.rus_status.text() == "Recipient Update Service: idle"


def test_rebuild_warns_first_and_runs_only_after_yes(
    qtbot: QtBot, rus_window: MainWindow, store: Store, prompts: Prompts
) -> None:
    recipients.create_recipient(store, "jsmith")
    prompts.answers = {REBUILD: False}
    menu = right_click_row(qtbot, rus_window, service_name(rus_window))
    click_menu_item(qtbot, menu, "Rebuild")
    assert prompts.questions == [pytest.approx(prompts.questions[0])]
    assert REBUILD in prompts.questions[0]
    qtbot.wait(300)
    assert recipients.get_recipient(store, "jsmith").addresses == ()

    prompts.answers = {REBUILD: True}
    with qtbot.waitSignal(rus_window.console.rus.run_finished, timeout=30_000) as finished:
        menu = right_click_row(qtbot, rus_window, service_name(rus_window))
        click_menu_item(qtbot, menu, "Rebuild")
    assert finished.args[0].kind == "rebuild"
    assert recipients.get_recipient(store, "jsmith").primary_address() == "jsmith@example.com"
    qtbot.waitUntil(
        lambda: rus_window.proxy.index(0, 3).data() == "Rebuild completed: 1 examined, 1 changed"
    )
    assert rus_window.proxy.index(0, 2).data() != ""


def test_properties_change_the_update_interval(
    qtbot: QtBot, rus_window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    def edit(sheet: RusPropertiesDialog) -> None:
        combo = sheet.general.interval
        assert combo.currentText() == "Never run"
        assert [combo.itemText(i) for i in range(combo.count())] == [
            "Always run",
            "Run every hour",
            "Run every 2 hours",
            "Run every 4 hours",
            "Never run",
            "Use custom schedule",
        ]
        assert not sheet.apply_button.isEnabled()
        combo.setCurrentIndex(combo.findData("2h"))
        assert sheet.apply_button.isEnabled()
        sheet.ok_button.click()

    dialogs.expect(RusPropertiesDialog, edit)
    double_click_row(qtbot, rus_window, service_name(rus_window))
    assert load_schedule(store).mode == "2h"
    assert rus_window.proxy.index(0, 1).data() == "Run every 2 hours"


def test_custom_schedule_from_the_weekly_grid(
    qtbot: QtBot, rus_window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    def grid(dialog: ScheduleDialog) -> None:
        for day in range(5):
            dialog.select(day, 8, 17)
        dialog.run_button.click()
        assert dialog.summary.text() == "Runs: mon-fri 8-17"
        dialog.accept()

    def edit(sheet: RusPropertiesDialog) -> None:
        dialogs.expect(ScheduleDialog, grid)
        sheet.general.customize.click()
        assert sheet.general.interval.currentData() == "custom"
        sheet.ok_button.click()

    dialogs.expect(RusPropertiesDialog, edit)
    double_click_row(qtbot, rus_window, service_name(rus_window))
    saved = load_schedule(store)
    assert saved.mode == "custom" and saved.week[0][8] and not saved.week[5][8]
    assert rus_window.proxy.index(0, 1).data() == "Use custom schedule: mon-fri 8-17"


def test_custom_schedule_without_hours_is_refused(
    qtbot: QtBot, rus_window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    def edit(sheet: RusPropertiesDialog) -> None:
        combo = sheet.general.interval
        combo.setCurrentIndex(combo.findData("custom"))
        sheet.ok_button.click()
        assert sheet.isVisible()
        assert "has no hour selected" in prompts.errors[-1]
        sheet.reject()

    dialogs.expect(RusPropertiesDialog, edit)
    double_click_row(qtbot, rus_window, service_name(rus_window))
    assert load_schedule(store).mode == "never"


def test_never_run_warns(
    qtbot: QtBot, rus_window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    save_schedule(store, Schedule("always"))

    def edit(sheet: RusPropertiesDialog) -> None:
        combo = sheet.general.interval
        combo.setCurrentIndex(combo.findData("never"))
        sheet.ok_button.click()

    dialogs.expect(RusPropertiesDialog, edit)
    double_click_row(qtbot, rus_window, service_name(rus_window))
    assert prompts.of("warn") and "Never run" in prompts.of("warn")[0]
    assert load_schedule(store).mode == "never"


def test_progress_in_the_status_bar_and_cancel(
    qtbot: QtBot, rus_window: MainWindow, store: Store, prompts: Prompts
) -> None:
    add_recipients(store, 20_000)
    view = rus_window.current
    assert isinstance(view, RecipientUpdateServicesView)
    bridge = rus_window.console.rus
    prompts.answers = {REBUILD: True}
    select_row(qtbot, rus_window, service_name(rus_window))
    assert not view.cancel.isEnabled() and "No update is under way" in view.cancel.toolTip()
    with qtbot.waitSignal(bridge.progress_changed, timeout=30_000):
        view.rebuild.trigger()
    assert rus_window.rus_progress.isVisible() and rus_window.rus_cancel.isVisible()
    assert rus_window.rus_status.text().startswith("Recipient Update Service: Rebuild ")
    assert view.cancel.isEnabled()
    with qtbot.waitSignal(bridge.run_finished, timeout=30_000) as finished:
        rus_window.rus_cancel.click()
    record = finished.args[0]
    print(f"cancel: {record.outcome} after {record.done} of {record.total}")
    assert record.outcome in ("cancelled", "completed")  # a fast machine may finish first
    assert not rus_window.rus_progress.isVisible()
    assert not view.cancel.isEnabled()
    if record.outcome == "cancelled":
        assert "cancelled after" in rus_window.proxy.index(0, 3).data()


def test_gui_thread_never_blocks_during_a_rebuild_of_20000_recipients(
    qtbot: QtBot, rus_window: MainWindow, store: Store, prompts: Prompts
) -> None:
    """A QTimer latency probe: the gap between two 5 ms ticks stays under 100 ms."""
    add_recipients(store, 20_000)
    rus_window.select_node("recipients/policies")  # a list that refreshes as the RUS writes
    bridge = rus_window.console.rus
    gaps: list[float] = []
    progress: list[tuple[int, int]] = []
    bridge.progress_changed.connect(lambda done, total: progress.append((done, total)))
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(5)

    def tick() -> None:
        gaps.append(clock.restart())

    probe.timeout.connect(tick)
    started = time.monotonic()
    clock.start()
    probe.start()
    with qtbot.waitSignal(bridge.run_finished, timeout=120_000) as finished:
        bridge.rebuild()
    probe.stop()
    duration = time.monotonic() - started
    record = finished.args[0]
    assert record.outcome == "completed" and record.examined == 20_000
    assert progress[-1] == (20_000, 20_000)
    print(f"rebuild of 20,000: {duration:.2f} s, {len(gaps)} ticks, longest gap {max(gaps)} ms")
    assert len(gaps) > 10, f"the probe ticked {len(gaps)} times in {duration:.1f} s"
    assert max(gaps) < 100, f"the GUI thread was blocked for {max(gaps)} ms"
    stamped = recipients.get_recipient(store, "user19999")
    assert stamped.primary_address() == "user19999@example.com"
