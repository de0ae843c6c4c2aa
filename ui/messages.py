"""The console's one message-box helper: every prompt, warning and refusal goes through here.

Tests replace these functions (``monkeypatch.setattr(messages, "ask", ...)``) to answer prompts,
so callers must use ``messages.ask(...)``, never ``from ui.messages import ask``. GUI thread only.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger(__name__)

TITLE = "Postroom System Manager"


def error(parent: QWidget | None, message: str | BaseException, title: str = TITLE) -> None:
    """Show a refusal (``str(error)`` of a PostroomError) or another error."""
    text = str(message)
    log.info("refused: %s", text)
    QMessageBox.critical(parent, title, text)


def warn(parent: QWidget | None, message: str, title: str = TITLE) -> None:
    """Show a warning the user acknowledges with OK."""
    QMessageBox.warning(parent, title, message)


def info(parent: QWidget | None, message: str, title: str = TITLE) -> None:
    """Show a piece of information the user acknowledges with OK."""
    QMessageBox.information(parent, title, message)


def ask(
    parent: QWidget | None, question: str, title: str = TITLE, default_yes: bool = True
) -> bool:
    """Ask a Yes/No question; True for Yes."""
    default = QMessageBox.StandardButton.Yes if default_yes else QMessageBox.StandardButton.No
    answer = QMessageBox.question(
        parent,
        title,
        question,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        default,
    )
    return answer == QMessageBox.StandardButton.Yes
