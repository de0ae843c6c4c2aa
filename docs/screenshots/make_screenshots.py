"""Regenerate the console screenshots in docs/screenshots/ from the real window.

Run under Xvfb (a real X server, so fonts, styles and popups are what a person sees):

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_screenshots.py

It builds a sample organisation in a temporary data directory (nothing in your own data is
touched), opens the console on it with the SMTP service on a free loopback port, and saves one
PNG per window and dialog next to this script.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from PySide6.QtCore import QEventLoop, QItemSelectionModel, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication, QMenu, QWidget  # noqa: E402

from app import organization, policies, rus  # noqa: E402
from app.directory import recipients  # noqa: E402
from app.rus.schedule import Schedule, parse_week, save_schedule  # noqa: E402
from app.settings import parse_host_port, save_settings  # noqa: E402
from app.store import Store  # noqa: E402

PEOPLE = [
    ("jsmith", "John", "Smith", "Sales"),
    ("mclark", "Mark", "Clark", "Sales"),
    ("agarcia", "Ana", "García", "Sales"),
    ("lmueller", "Lena", "Müller", "Support"),
    ("tnguyen", "Thanh", "Nguyen", "Support"),
    ("bwhite", "Bob", "White", "Finance"),
    ("cjones", "Carol", "Jones", "Finance"),
    ("dpatel", "Dev", "Patel", "IT"),
]


def settle(ms: int = 150) -> None:
    """Let the event loop paint for a moment (this script is not GUI code: it only waits)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save(widget: QWidget, name: str) -> None:
    settle()
    path = HERE / f"{name}.png"
    widget.grab().save(str(path))
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def save_screen_area(widget: QWidget, extra: list[QWidget], name: str) -> None:
    """The screen under ``widget`` and its popups (popups are windows of their own)."""
    settle()
    rect = widget.frameGeometry()
    for other in extra:
        rect = rect.united(other.frameGeometry())
    screen = QGuiApplication.primaryScreen()
    shot = screen.grabWindow(0, rect.x(), rect.y(), rect.width(), rect.height())
    path = HERE / f"{name}.png"
    shot.save(str(path))
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_store(data_dir: Path) -> Store:
    store = Store.open(data_dir)
    organization.initialize(store, "Example Corp", "example.com")
    for alias, given, surname, department in PEOPLE:
        recipients.create_recipient(
            store,
            alias,
            attributes={"givenName": given, "sn": surname, "department": department},
        )
    policies.create_policy(store, "Sales", "(department=Sales)", "Sales staff get both domains")
    policies.add_rule(store, "Sales", "%g.%s@sales.example.com")
    policies.add_rule(store, "Sales", "@example.com")
    policies.create_policy(store, "Support", "(&(department=Support)(mailNickname=*))")
    policies.add_rule(store, "Support", "@support.example.com")
    save_schedule(store, Schedule("always"))
    save_settings(store, listen=[f"127.0.0.1:{free_port()}"])
    rus.run(store, "rebuild")
    return store


def on_modal(cls: type, handler: Callable[[QWidget], None]) -> None:
    """Run ``handler`` once a modal dialog of ``cls`` is up (inside its own event loop)."""

    def poll() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, cls) and widget.isVisible():
            handler(widget)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Postroom")
    from ui import icons, messages
    from ui.app import close_window, open_window
    from ui.dialogs.address import AddressTypeDialog, SmtpAddressDialog
    from ui.dialogs.filter_builder import FindRecipientsDialog
    from ui.dialogs.policy import PolicyDialog
    from ui.dialogs.rus import RusPropertiesDialog, ScheduleDialog
    from ui.dialogs.smtp import SmtpServerDialog

    app.setWindowIcon(icons.app_icon())
    # Prompts would block the script; answer them (the dialogs are shown, not the prompts).
    messages.ask = lambda *args, **kwargs: False  # type: ignore[assignment]

    workdir = Path(tempfile.mkdtemp(prefix="postroom-shots-"))
    store = sample_store(workdir / "data")
    settings = QSettings(str(workdir / "console.ini"), QSettings.Format.IniFormat)
    window = open_window(store, settings)
    window.resize(1100, 640)
    window.move(20, 20)
    window.splitter.setSizes([320, 780])
    window.show()
    settle(1500)  # the SMTP service starts in the background
    try:
        window.tree.expandAll()
        window.select_node("recipients/policies")
        index = window.proxy.index(0, 0)
        window.result_list.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        save(window, "main_window")

        # The context menu of a policy, with All Tasks open.
        rect = window.result_list.visualRect(index)
        window._result_context_menu(rect.center())
        settle()
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu)
        tasks = next(a for a in menu.actions() if a.menu() is not None)
        menu.setActiveAction(tasks)
        settle(400)
        popups = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()
        ]
        save_screen_area(window, popups, "policy_context_menu")
        for popup in popups:
            popup.close()

        window.select_node("recipients/update-services")
        window.result_list.setCurrentIndex(window.proxy.index(0, 0))
        rus_name = str(window.proxy.index(0, 0).data())
        save(window, "recipient_update_services")

        window.select_node("servers/host/protocols/smtp/default/sessions")
        host, port = parse_host_port(window.console.smtp.addresses[0])
        client = smtplib.SMTP(host, port, timeout=10)
        client.ehlo("workstation.example.com")
        settle(2500)
        save(window, "current_sessions")
        client.quit()

        window.select_node("servers/host/protocols/smtp/default")
        save(window, "smtp_virtual_server")

        # The Sales policy's sheet, each tab; then New… on E-Mail Addresses.
        sales = policies.get_policy(store, "Sales")
        sheet = PolicyDialog(window, store, sales)
        sheet.show()
        save(sheet, "policy_general")
        sheet.tabs.setCurrentWidget(sheet.details)
        save(sheet, "policy_details")
        sheet.tabs.setCurrentWidget(sheet.addresses)
        sheet.addresses.rules.add(policies.make_rule("@example.net"))
        sheet.addresses.select_row(2)
        save(sheet, "policy_email_addresses")

        chooser = AddressTypeDialog(sheet)
        chooser.show()
        save(chooser, "address_type")
        chooser.close()

        address = SmtpAddressDialog(sheet, None, sheet.addresses.rules.rules())
        address.address.setText("%g.%s@example.net")
        address.show()
        save(address, "smtp_address")
        address.address.setText("@exa mple.net")
        save(address, "smtp_address_invalid")
        address.close()

        finder = FindRecipientsDialog(sheet, store, sales.filter)
        finder.show()
        finder.find_now()
        settle(600)
        save(finder, "find_recipients")
        finder.reject()
        sheet.close()

        default = next(p for p in policies.list_policies(store) if p.is_default)
        default_sheet = PolicyDialog(window, store, default)
        default_sheet.show()
        default_sheet.tabs.setCurrentWidget(default_sheet.addresses)
        default_sheet.addresses.select_row(0)
        save(default_sheet, "default_policy_email_addresses")
        default_sheet.close()

        rus_sheet = RusPropertiesDialog(
            window,
            rus_name,
            Schedule("custom", parse_week("mon-fri 8-17")),
            window.console.rus.last_run(),
            lambda schedule: None,
        )
        rus_sheet.show()
        save(rus_sheet, "rus_properties")
        rus_sheet.tabs.setCurrentIndex(1)
        save(rus_sheet, "rus_status")
        rus_sheet.close()

        grid = ScheduleDialog(window, parse_week("mon-fri 8-17; sat 10-12"))
        grid.show()
        save(grid, "rus_schedule")
        grid.close()

        smtp_sheet = SmtpServerDialog(window, store)
        smtp_sheet.show()
        for number, name in enumerate(("general", "access", "messages", "delivery")):
            smtp_sheet.tabs.setCurrentIndex(number)
            save(smtp_sheet, f"smtp_properties_{name}")
        smtp_sheet.close()
        _ = (on_modal, Qt)
    finally:
        close_window(window)
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
