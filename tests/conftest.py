"""Shared fixtures: a real store in ``tmp_path``, the real console window on it, answered
prompts, a free loopback port and the SMTP probe. Tests ask for them by name."""

from __future__ import annotations

import os
import smtplib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

# Qt never needs a display in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app import organization  # noqa: E402
from app.settings import save_settings  # noqa: E402
from app.store import Store  # noqa: E402
from tests.smtp_receivers import Receiver  # noqa: E402
from tests.smtp_support import Smtp, organisation, start  # noqa: E402

if TYPE_CHECKING:
    from pytestqt.qtbot import QtBot

    from tests.ui_support import DialogDriver
    from ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """A new organisation whose Default Policy is ``@example.com``."""
    opened = Store.open(data_dir)
    organization.initialize(opened, "Test Organization", "example.com")
    yield opened
    opened.close()


# --- SMTP ---------------------------------------------------------------------------------------


@pytest.fixture
def free_port() -> int:
    """A loopback port nobody listens on (for settings that refuse port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpProbe(Protocol):
    def __call__(self, host: str, port: int, address: str) -> bool: ...


def accepts(host: str, port: int, address: str) -> bool:
    """Whether the SMTP service takes ``address`` at RCPT TO now (no message is sent)."""
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.ehlo("client.test")
        client.mail("probe@partner.example")
        code, _ = client.rcpt(address)
        client.rset()
    return code == 250


@pytest.fixture
def smtp_accepts() -> SmtpProbe:
    """The SMTP probe: ``qtbot.waitUntil(lambda: smtp_accepts(host, port, address))`` waits
    until the service answers 250 for an address (e.g. once the RUS stamped it)."""
    return accepts


# --- the console --------------------------------------------------------------------------------


@dataclass
class Prompts:
    """Stands in for ui.messages: records every message box and answers the questions.

    ``answers`` maps a phrase of a question to the answer; a question nobody expected fails the
    test (and answers No, so a modal loop cannot hang).
    """

    answers: dict[str, bool] = field(default_factory=dict)
    shown: list[tuple[str, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def ask(self, _parent: object, question: str, *_args: object, **_kw: object) -> bool:
        self.shown.append(("ask", question))
        for phrase, answer in self.answers.items():
            if phrase in question:
                return answer
        self.unexpected.append(question)
        return False

    def _record(self, kind: str) -> Callable[..., None]:
        def record(_parent: object, message: object, *_args: object, **_kw: object) -> None:
            self.shown.append((kind, str(message)))

        return record

    def of(self, kind: str) -> list[str]:
        return [text for shown_kind, text in self.shown if shown_kind == kind]

    @property
    def errors(self) -> list[str]:
        return self.of("error")

    @property
    def questions(self) -> list[str]:
        return self.of("ask")


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Prompts]:
    # The console is imported here, not above, so that engine-only test runs never load it.
    from ui import messages

    recorder = Prompts()
    monkeypatch.setattr(messages, "ask", recorder.ask)
    for kind in ("error", "warn", "info"):
        monkeypatch.setattr(messages, kind, recorder._record(kind))
    yield recorder
    assert recorder.unexpected == [], f"questions nobody answered: {recorder.unexpected}"


class ConsoleOpener(Protocol):
    def __call__(self, *, services: bool = False, show: bool = True) -> MainWindow: ...


@pytest.fixture
def open_console(qtbot: QtBot, store: Store, tmp_path: Path) -> Iterator[ConsoleOpener]:
    """Opens the real console window on ``store``, its layout kept in tmp_path/console.ini
    (never in the real home); every window still open is closed, services stopped, at the end.
    """
    from PySide6.QtCore import QSettings

    from ui.app import close_window, open_window

    opened: list[MainWindow] = []

    def open_one(*, services: bool = False, show: bool = True) -> MainWindow:
        settings = QSettings(str(tmp_path / "console.ini"), QSettings.Format.IniFormat)
        window = open_window(store, settings, services=services)
        qtbot.addWidget(window)
        opened.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    yield open_one
    for window in opened:
        close_window(window)  # a second close of a window the test closed does nothing


@pytest.fixture
def window(open_console: ConsoleOpener, prompts: Prompts) -> MainWindow:
    """The real main window without the RUS and SMTP services."""
    return open_console()


@pytest.fixture
def live_window(
    qtbot: QtBot, store: Store, open_console: ConsoleOpener, free_port: int, prompts: Prompts
) -> MainWindow:
    """The real main window with the RUS and the SMTP service on a free loopback port."""
    save_settings(store, listen=[f"127.0.0.1:{free_port}"])
    shown = open_console(services=True)
    qtbot.waitUntil(lambda: shown.console.smtp.state == "running", timeout=10_000)
    return shown


@pytest.fixture
def smtp(store: Store) -> Iterator[Smtp]:
    """A running SMTP service on a free loopback port, for the test organisation."""
    organisation(store)
    running = start(store)
    yield running
    running.service.stop()


@pytest.fixture
def dialogs() -> Iterator[DialogDriver]:
    """Answers the modal dialogs a test expects; fails the test on one that never opened."""
    from tests.ui_support import DialogDriver  # Qt loads only for the tests that drive dialogs

    driver = DialogDriver()
    yield driver
    driver.check()


# --- outbound: SMTP receivers -------------------------------------------------------------------


@pytest.fixture
def smtp_receiver() -> Iterator[Callable[..., Receiver]]:
    """Starts real aiosmtpd receivers on free 127.0.0.x ports, told how to answer (see
    tests/smtp_receivers.py): ``smtp_receiver(rcpt_replies={...})``; all stop at the end."""
    started: list[Receiver] = []

    def start_receiver(**behaviour: Any) -> Receiver:
        receiver = Receiver(**behaviour).start()
        started.append(receiver)
        return receiver

    yield start_receiver
    for receiver in started:
        receiver.stop()
