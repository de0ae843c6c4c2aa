"""The first-run dialog: a new data directory gets the organisation and domain it asks for."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLabel
from pytestqt.qtbot import QtBot

import resources
from app import organization, policies
from app.store import Store
from ui import app as console_app
from ui import messages
from ui.dialogs.first_run import FirstRunDialog, choose_data_directory

# Where to keep the screenshot for docs/screenshots/ (set when taking it under Xvfb).
SCREENSHOT_DIR = os.environ.get("POSTROOM_SCREENSHOT_DIR")


@pytest.fixture
def new_store(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store in a data directory that has never been set up; the machine's domain is fixed."""
    monkeypatch.setattr(organization, "default_domain", lambda: "corp.example")
    opened = Store.open(data_dir)
    yield opened
    opened.close()


@pytest.fixture
def dialog(qtbot: QtBot, new_store: Store) -> FirstRunDialog:
    shown = FirstRunDialog(new_store)
    qtbot.addWidget(shown)
    shown.show()
    qtbot.waitExposed(shown)
    return shown


def default_policy_rules(store: Store) -> list[tuple[str, bool, bool, bool]]:
    default = next(p for p in policies.list_policies(store) if p.is_default)
    return [(r.address, r.enabled, r.primary, r.responsible) for r in default.rules]


def type_into(qtbot: QtBot, field: object, text: str) -> None:
    field.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(field, text)


def test_defaults_are_filled_in(dialog: FirstRunDialog) -> None:
    assert dialog.name_edit.text() == organization.DEFAULT_ORGANIZATION_NAME
    assert dialog.domain_edit.text() == "corp.example"
    assert dialog.ok_button.isEnabled()
    assert "@corp.example" in dialog.feedback_text


def test_ok_creates_the_organization_and_default_policy(
    qtbot: QtBot, dialog: FirstRunDialog, new_store: Store
) -> None:
    type_into(qtbot, dialog.name_edit, "Contoso Ltd")
    type_into(qtbot, dialog.domain_edit, "Contoso.COM")
    assert "@contoso.com" in dialog.feedback_text
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert dialog.result() == FirstRunDialog.DialogCode.Accepted
    created = organization.get_organization(new_store)
    assert created is not None and created.name == "Contoso Ltd"
    assert dialog.organization == created
    assert default_policy_rules(new_store) == [("@contoso.com", True, True, True)]


def test_international_domain_is_stored_as_a_labels(
    qtbot: QtBot, dialog: FirstRunDialog, new_store: Store
) -> None:
    dialog.domain_edit.setText("bücher.example")  # QTest cannot type a key for "ü"
    assert "@bücher.example" in dialog.feedback_text
    qtbot.keyClick(dialog.domain_edit, Qt.Key.Key_Return)
    assert default_policy_rules(new_store) == [("@xn--bcher-kva.example", True, True, True)]


@pytest.mark.parametrize(
    ("domain", "says"),
    [
        ("", "The domain is empty"),
        ("localhost", "has no dot"),
        ("mail..example.com", "two dots in a row"),
        ("*.example.com", "wildcards are not supported"),
        ("[192.0.2.1]", "IP address literal"),
        ("exa mple.com", "contains a space"),
    ],
)
def test_bad_domain_is_refused_and_nothing_is_created(
    qtbot: QtBot, dialog: FirstRunDialog, new_store: Store, domain: str, says: str
) -> None:
    type_into(qtbot, dialog.domain_edit, domain)
    if not domain:
        dialog.domain_edit.clear()
    assert says in dialog.feedback_text
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClick(dialog.domain_edit, Qt.Key.Key_Return)  # Enter must not slip past the check
    assert dialog.isVisible()
    assert organization.get_organization(new_store) is None
    assert policies.list_policies(new_store) == []


def test_long_refusal_is_shown_whole(qtbot: QtBot, dialog: FirstRunDialog) -> None:
    """A pasted overlong label wraps inside the dialog, which grows instead of cutting it off."""
    dialog.domain_edit.setText("a" * 70 + ".example")
    assert "at most 63" in dialog.feedback_text
    assert ("a" * 70) in dialog.feedback_text
    qtbot.wait(10)
    feedback = dialog.feedback.geometry()
    assert feedback.right() < dialog.width()
    assert feedback.bottom() < dialog.buttons.geometry().top()
    assert dialog.feedback.heightForWidth(feedback.width()) <= feedback.height()


def test_empty_name_is_refused_and_nothing_is_created(
    qtbot: QtBot, dialog: FirstRunDialog, new_store: Store
) -> None:
    type_into(qtbot, dialog.name_edit, "   ")
    assert "organization name is empty" in dialog.feedback_text
    assert not dialog.ok_button.isEnabled()
    dialog.accept()  # even when called directly, the check holds
    assert dialog.isVisible()
    assert organization.get_organization(new_store) is None


def test_fixing_the_input_enables_ok_again(qtbot: QtBot, dialog: FirstRunDialog) -> None:
    type_into(qtbot, dialog.domain_edit, "example")
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.domain_edit, ".org")
    assert dialog.ok_button.isEnabled()
    assert "@example.org" in dialog.feedback_text


def test_cancel_creates_nothing(qtbot: QtBot, dialog: FirstRunDialog, new_store: Store) -> None:
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.result() == FirstRunDialog.DialogCode.Rejected
    assert dialog.organization is None
    assert organization.get_organization(new_store) is None


def test_ask_shows_the_dialog_only_for_a_new_data_directory(
    qtbot: QtBot, new_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[FirstRunDialog] = []

    def accept_defaults(self: FirstRunDialog) -> int:
        shown.append(self)
        qtbot.addWidget(self)
        self.accept()
        return int(self.result())

    monkeypatch.setattr(FirstRunDialog, "exec", accept_defaults)
    first = FirstRunDialog.ask(None, new_store)
    assert first is not None and first.name == organization.DEFAULT_ORGANIZATION_NAME
    assert default_policy_rules(new_store) == [("@corp.example", True, True, True)]

    again = FirstRunDialog.ask(None, new_store)
    assert again == first
    assert len(shown) == 1, "an organisation that exists is not asked for again"


def test_ask_returns_none_when_cancelled(
    qtbot: QtBot, new_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cancel(self: FirstRunDialog) -> int:
        qtbot.addWidget(self)
        self.reject()
        return int(self.result())

    monkeypatch.setattr(FirstRunDialog, "exec", cancel)
    assert FirstRunDialog.ask(None, new_store) is None
    assert organization.get_organization(new_store) is None


def test_data_directory_is_shown_from_home(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    store = Store.open(tmp_path / "home/.local/share/postroom")
    shown = FirstRunDialog(store)
    qtbot.addWidget(shown)
    try:
        labels = [label.text() for label in shown.findChildren(QLabel)]
        assert "~/.local/share/postroom" in labels
    finally:
        store.close()


def test_screenshot(qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dialog as a person sees it; kept for docs/ when POSTROOM_SCREENSHOT_DIR is set."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(organization, "default_domain", lambda: "example.com")
    store = Store.open(tmp_path / "home/.local/share/postroom")
    shown = FirstRunDialog(store)
    qtbot.addWidget(shown)
    target = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    try:
        shown.name_edit.setText("Contoso Ltd")
        shown.show()
        qtbot.waitExposed(shown)
        save_screenshot(qtbot, shown, target / "first_run.png")
        shown.domain_edit.setText("mail..contoso.com")  # what a refusal looks like
        save_screenshot(qtbot, shown, target / "first_run_refused.png")
    finally:
        store.close()


def save_screenshot(qtbot: QtBot, window: FirstRunDialog, path: Path) -> None:
    """Save what the window system shows of the window (offscreen: what the widget paints)."""
    qtbot.wait(100)  # let the window system paint it
    screen = window.screen()
    picture = screen.grabWindow(window.winId()) if screen is not None else window.grab()
    if picture.isNull() or picture.toImage().allGray():  # offscreen: nothing on a screen
        picture = window.grab()
    assert picture.width() >= window.minimumWidth()
    assert picture.save(str(path))


# --- choosing a data directory (the launcher's "Open Another Data Directory…") ----------------


def answer_folder_dialog(monkeypatch: pytest.MonkeyPatch, *answers: Path | None) -> list[str]:
    """Make the folder chooser return these answers in turn; returns where each one started."""
    pending = list(answers)
    starts: list[str] = []

    def fake(parent: object, caption: str, start: str) -> str:
        starts.append(start)
        answer = pending.pop(0)
        return "" if answer is None else str(answer)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(fake))
    return starts


def test_choose_data_directory_returns_the_chosen_folder(
    qapp: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    starts = answer_folder_dialog(monkeypatch, folder)
    assert choose_data_directory(None, tmp_path) == folder
    assert starts == [str(tmp_path)]


def test_choose_data_directory_cancelled(
    qapp: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_folder_dialog(monkeypatch, None)
    assert choose_data_directory(None, tmp_path) is None


def test_choose_data_directory_refuses_a_folder_it_cannot_write(
    qapp: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root may write anywhere: let the folder say no for it
        real_access = os.access
        monkeypatch.setattr(
            os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode)
        )
    errors: list[str] = []
    monkeypatch.setattr(messages, "error", lambda parent, message: errors.append(str(message)))
    answer_folder_dialog(monkeypatch, locked, None)
    assert choose_data_directory(None, tmp_path) is None
    assert errors and "cannot write to" in errors[0]


def test_choose_data_directory_asks_before_using_a_folder_of_other_files(
    qapp: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "letter.odt").write_text("hello")
    empty = tmp_path / "postroom"
    empty.mkdir()
    questions: list[str] = []

    def say_no(parent: object, question: str, **kwargs: object) -> bool:
        questions.append(question)
        return False

    monkeypatch.setattr(messages, "ask", say_no)
    starts = answer_folder_dialog(monkeypatch, documents, empty)
    assert choose_data_directory(None, tmp_path) == empty
    assert len(questions) == 1 and "holds other files and no Postroom data" in questions[0]
    assert starts == [str(tmp_path), str(documents)]
    assert sorted(p.name for p in documents.iterdir()) == ["letter.odt"], "nothing was added"


# --- how the console starts (ui.app.run) --------------------------------------------------------


def test_console_tells_the_desktop_who_it_is(
    qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher's StartupWMClass and file name match the running console."""
    answer_folder_dialog(monkeypatch, None)
    assert console_app.run(tmp_path / "data", choose_data_dir=True) == 0
    assert qapp.applicationName() == resources.APP_NAME  # X11 WM_CLASS
    assert qapp.desktopFileName() == resources.APP_ID  # Wayland app id


def test_choose_data_dir_cancelled_opens_and_creates_nothing(
    qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = answer_folder_dialog(monkeypatch, None)
    assert console_app.run(tmp_path / "data", choose_data_dir=True) == 0
    assert starts == [str(tmp_path / "data")]
    assert not (tmp_path / "data").exists()


def test_chosen_new_data_dir_asks_for_the_organization_there(
    qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "elsewhere"
    chosen.mkdir()
    answer_folder_dialog(monkeypatch, chosen)
    asked: list[Path] = []

    def cancel(cls: type, parent: object, store: Store) -> None:
        asked.append(store.paths.root)
        return None

    monkeypatch.setattr(FirstRunDialog, "ask", classmethod(cancel))
    assert console_app.run(tmp_path / "data", choose_data_dir=True) == 0
    assert asked == [chosen]
