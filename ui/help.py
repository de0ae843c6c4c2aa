"""Built-in help (F1: a page per console tree node) and Help > About Postroom."""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

import app
import resources
from ui import icons

if TYPE_CHECKING:
    from ui.console import Console

log = logging.getLogger(__name__)

CONTENTS = "index"

# Tree nodes whose page is not named after their icon (see ui/tree.py for the keys).
TOPIC_BY_NODE_KEY: dict[str, str] = {
    "servers/host/protocols/smtp": "smtp",
}


class TreeNode(Protocol):
    """What help needs of a console tree node (ui.node.Node)."""

    key: str
    icon: str


def topic_for(node: TreeNode | None) -> str:
    """The help page of a console tree node: by its key, else its icon's concept, else Contents."""
    if node is None:
        return CONTENTS
    known = resources.help_topics()
    for topic in (TOPIC_BY_NODE_KEY.get(node.key), node.icon):
        if topic in known:
            return topic
    log.debug("no help page for node %s; showing Contents", node.key)
    return CONTENTS


class HelpDialog(QDialog):
    """A small help browser over the pages in ``resources/help``. GUI thread only.

    Not modal, so it can stay open beside the console; ``show_topic`` reuses the open one.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("helpDialog")
        self.setWindowTitle("Postroom Help")
        self.setWindowIcon(icons.icon("help"))
        self.browser = QTextBrowser(self)
        # Pages link to each other by file name; the browser resolves them in this folder.
        self.browser.setSearchPaths([str(resources.help_path(CONTENTS).parent)])
        self.browser.setOpenExternalLinks(True)

        toolbar = QToolBar(self)
        self.back_action = QAction(icons.icon("back"), "Back", self)
        self.forward_action = QAction(icons.icon("forward"), "Forward", self)
        self.contents_action = QAction(icons.icon("help"), "Contents", self)
        for action in (self.back_action, self.forward_action, self.contents_action):
            toolbar.addAction(action)
        self.back_action.triggered.connect(self.browser.backward)
        self.forward_action.triggered.connect(self.browser.forward)
        self.contents_action.triggered.connect(lambda: self.open_topic(CONTENTS))
        self.browser.backwardAvailable.connect(self.back_action.setEnabled)
        self.browser.forwardAvailable.connect(self.forward_action.setEnabled)
        self.back_action.setEnabled(False)
        self.forward_action.setEnabled(False)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(toolbar)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.resize(560, 520)

    def open_topic(self, topic: str) -> None:
        self.browser.setSource(QUrl.fromLocalFile(str(resources.help_path(topic))))

    @property
    def topic(self) -> str:
        """The page shown now (its file name without .html)."""
        return Path(self.browser.source().toLocalFile() or self.browser.source().path()).stem

    @classmethod
    def show_topic(cls, parent: QWidget | None, topic: str) -> HelpDialog:
        """Show this page in the parent's help window, opening one if needed."""
        existing = parent.findChild(cls, "helpDialog") if parent is not None else None
        dialog = existing if isinstance(existing, cls) else cls(parent)
        dialog.open_topic(topic)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog


@dataclass(frozen=True)
class AboutFacts:
    """What Help > About tells: which Postroom, on which data, listening where."""

    version: str
    data_dir: Path
    schema_version: int
    smtp_listen: str
    smtp_status: str

    @classmethod
    def of(cls, console: Console) -> AboutFacts:
        return cls(
            version=app.__version__,
            data_dir=console.data_dir,
            schema_version=console.store.schema_version(),
            smtp_listen=console.smtp.listen_text() or "not set",
            smtp_status=console.smtp.status_text(),
        )


class AboutDialog(QDialog):
    """Help > About Postroom. GUI thread only; use ``AboutDialog.show_about``."""

    def __init__(self, facts: AboutFacts, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.facts = facts
        self.setWindowTitle("About Postroom")
        logo = QLabel(self)
        logo.setPixmap(icons.app_icon().pixmap(64, 64))
        self.title_label = QLabel(
            f"<b>Postroom System Manager</b><br>Version {facts.version}", self
        )
        summary = QLabel(
            "Hosts e-mail for several domains on this machine, managed like the Exchange 2000 "
            "System Manager.",
            self,
        )
        summary.setWordWrap(True)
        heading = QVBoxLayout()
        heading.addWidget(self.title_label)
        heading.addWidget(summary)
        top = QHBoxLayout()
        top.addWidget(logo)
        top.addLayout(heading, 1)

        form = QFormLayout()
        self.rows: dict[str, str] = {
            "Data directory:": str(facts.data_dir),
            "Database schema:": f"version {facts.schema_version}",
            "SMTP listens on:": facts.smtp_listen,
            "SMTP service:": facts.smtp_status.removeprefix("SMTP: "),
            "Runs on:": f"Python {platform.python_version()}, Qt {qVersion()}, "
            f"PySide6 {pyside_version}",
        }
        for label, value in self.rows.items():
            shown = QLabel(value, self)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, shown)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok, self)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addSpacing(6)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)

    @classmethod
    def show_about(cls, parent: QWidget | None, facts: AboutFacts) -> None:
        """Show the About box modally."""
        cls(facts, parent).exec()
