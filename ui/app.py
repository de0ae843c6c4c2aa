"""The console's entry point (`postroom.console` in pyproject.toml): open it on a data directory."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

import resources
from app import organization
from app.errors import PostroomError
from app.store import Store
from ui import icons, messages
from ui.console import Console
from ui.dialogs.first_run import FirstRunDialog, choose_data_directory
from ui.main_window import MainWindow

log = logging.getLogger(__name__)

SETTINGS_FILE = "console.ini"


def console_settings(data_dir: Path) -> QSettings:
    """The console's own settings (window layout): an INI file in the data directory."""
    return QSettings(str(data_dir / SETTINGS_FILE), QSettings.Format.IniFormat)


def open_window(
    store: Store, settings: QSettings | None = None, *, services: bool = True
) -> MainWindow:
    """A console window on an open store (tests call this with their own settings file)."""
    console = Console(store, settings or console_settings(store.paths.root))
    window = MainWindow(console)
    console.start(services=services)
    console.smtp.failed.connect(lambda message: messages.error(window, message))
    return window


def close_window(window: MainWindow) -> None:
    """Close the window, stop the services and wait for background work."""
    window.close()
    window.console.shutdown()


def run(data_dir: Path, *, choose_data_dir: bool = False) -> int:
    """Open the console on ``data_dir`` and return the exit status when it closes.

    With ``choose_data_dir`` (``postroom --choose-data-dir``, the launcher's second entry) a
    folder chooser starting at ``data_dir`` asks first; cancelling it exits with status 0.
    """
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Postroom")
    app.setOrganizationName("Postroom")
    app.setDesktopFileName(resources.APP_ID)  # Wayland's app id: the .desktop file's name
    app.setWindowIcon(icons.app_icon())
    if choose_data_dir:
        chosen = choose_data_directory(None, data_dir)
        if chosen is None:
            return 0
        data_dir = chosen
    try:
        store = Store.open(data_dir)
    except PostroomError as error:
        messages.error(None, error)
        return 1
    try:
        new = organization.get_organization(store) is None
        if new and FirstRunDialog.ask(None, store) is None:
            return 0
        window = open_window(store)
        window.show()
        status = app.exec()
        window.console.shutdown()
        window.deleteLater()
        return int(status)
    finally:
        store.close()
