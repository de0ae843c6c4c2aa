"""``postroom`` with no arguments: ui.app.run opens the console and returns when it closes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.settings import save_settings
from app.store import Store
from ui import app as console_app
from ui.dialogs.first_run import FirstRunDialog
from ui.main_window import MainWindow

if TYPE_CHECKING:
    from tests.conftest import Prompts  # the fixture's type, not the fixture


def close_when_shown(seen: list[str]) -> None:
    """Close the console window once it is up (what the administrator would do)."""

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        shown = [w for w in windows if w.isVisible()]
        if shown:
            seen.append(shown[0].windowTitle())
            shown[0].close()
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


def test_run_opens_the_console_and_returns_0_when_it_closes(
    qtbot: QtBot, store: Store, data_dir: Path, prompts: Prompts
) -> None:
    save_settings(store, autostart=False)
    seen: list[str] = []
    close_when_shown(seen)
    assert console_app.run(data_dir) == 0
    assert seen == ["Postroom System Manager - Test Organization (Postroom)"]
    assert (data_dir / console_app.SETTINGS_FILE).is_file(), "layout kept in the data dir"


def test_a_new_data_directory_asks_first_and_cancel_quits(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts: Prompts
) -> None:
    asked: list[Path] = []

    def cancel(cls: type, parent: object, store: Store) -> None:
        asked.append(store.paths.root)
        return None

    monkeypatch.setattr(FirstRunDialog, "ask", classmethod(cancel))
    assert console_app.run(tmp_path / "new") == 0
    assert asked == [tmp_path / "new"]
    opened = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    assert not [w for w in opened if w.isVisible()]
