"""First run: a new data directory asks for the organisation name and the first mail domain."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import organization, paths
from app.directory import addressing
from app.errors import PostroomError
from app.model import Organization
from app.store import Store
from ui import icons, messages

log = logging.getLogger(__name__)

# Exchange's own limit for an organisation name; longer ones only get cut off in the tree.
MAX_NAME_LENGTH = 64


class FirstRunDialog(QDialog):
    """Asks a new data directory's organisation name and first mail domain, then creates them.

    GUI thread only. Use ``FirstRunDialog.ask``; the dialog stays open on a refused input and
    says what is wrong, so OK creates exactly what was shown.
    """

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.organization: Organization | None = None
        self.setWindowTitle("Postroom — New Organization")
        self.setWindowIcon(icons.app_icon())

        banner = QLabel()
        banner.setPixmap(icons.app_icon().pixmap(48, 48))
        banner.setAlignment(Qt.AlignmentFlag.AlignTop)
        heading = QLabel("<b>Set up your organization</b>")
        intro = QLabel(
            "This data directory is new. Name your organization and enter the first mail "
            "domain you host here. You can add more domains later on Recipient Policies."
        )
        intro.setWordWrap(True)
        header_text = QVBoxLayout()
        header_text.addWidget(heading)
        header_text.addWidget(intro)
        header = QHBoxLayout()
        header.addWidget(banner)
        header.addLayout(header_text, 1)

        self.name_edit = QLineEdit(organization.DEFAULT_ORGANIZATION_NAME)
        self.name_edit.setMaxLength(MAX_NAME_LENGTH)
        self.domain_edit = QLineEdit(addressing.display_domain(organization.default_domain()))
        self.domain_edit.setPlaceholderText("example.com")
        # One line under the domain: what OK will create, or what is wrong with the input.
        self.feedback = QLabel()
        self.feedback.setWordWrap(True)
        self.feedback.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Room for the longest refusal (three lines), so the dialog never jumps or cuts it off.
        self.feedback.setMinimumHeight(3 * self.feedback.fontMetrics().lineSpacing())
        self.feedback.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        location = QLabel(_short_path(store.paths.root))
        location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        location.setToolTip(
            f"{store.paths.root}\nTo use another folder, start Postroom with --data-dir, or "
            "use the launcher's Open Another Data Directory…"
        )

        form = QFormLayout()
        form.addRow("Data directory:", location)
        form.addRow("Organization &name:", self.name_edit)
        form.addRow("First mail &domain:", self.domain_edit)
        form.addRow("", self.feedback)

        # Made without a parent on purpose (not ui.widgets.ok_cancel): made on the dialog, its
        # buttons take part in the dialog's default-button handling, and Enter with OK disabled
        # pressed Cancel instead of leaving the refused domain on screen.
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = self._layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addSpacing(8)
        layout.addLayout(form)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)
        # The size hint is worked out for a narrower width, where the wrapped text is taller.
        self.resize(480, layout.heightForWidth(480))

        self.name_edit.textChanged.connect(self._validate)
        self.domain_edit.textChanged.connect(self._validate)
        self._validate()

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def _check(self) -> tuple[str, str]:
        """The name and the domain (A-labels) as typed, or PostroomError saying what is wrong."""
        name = self.name_edit.text().strip()
        if not name:
            raise PostroomError("The organization name is empty. Type a name, e.g. your company's.")
        return name, addressing.normalize_domain(self.domain_edit.text())

    def _validate(self) -> None:
        try:
            _, domain = self._check()
        except PostroomError as error:
            self._show_problem(str(error))
            return
        shown = addressing.display_domain(domain)
        self.feedback.setStyleSheet("")
        self.feedback.setTextFormat(Qt.TextFormat.RichText)  # a valid domain has no markup
        self.feedback.setText(
            f"The Default Policy will give every recipient the address "
            f"<i>alias</i>@{shown} (rule <b>@{shown}</b>)."
        )
        self.ok_button.setEnabled(True)

    def _show_problem(self, text: str) -> None:
        self.feedback.setStyleSheet("color: #b00020;")
        self.feedback.setTextFormat(Qt.TextFormat.PlainText)  # it quotes what was typed
        self.feedback.setText(_breakable(text))
        self.ok_button.setEnabled(False)
        self._layout.activate()
        needed = self._layout.heightForWidth(self.width())
        if needed > self.height():  # a refusal longer than the room kept for it
            self.resize(self.width(), needed)

    @property
    def feedback_text(self) -> str:
        """What the line under the domain says (for tests and screen readers)."""
        return self.feedback.text().replace(ZERO_WIDTH_SPACE, "")

    def accept(self) -> None:
        try:
            name, domain = self._check()
            self.organization = organization.initialize(self._store, name, domain)
        except PostroomError as error:
            self._show_problem(str(error))
            return
        log.info("first run: organization %s, domain %s", name, domain)
        super().accept()

    @classmethod
    def ask(cls, parent: QWidget | None, store: Store) -> Organization | None:
        """The organisation; asks for it first when the data directory is new (None: cancelled)."""
        existing = organization.get_organization(store)
        if existing is not None:
            return existing
        dialog = cls(store, parent)
        dialog.exec()
        return dialog.organization


ZERO_WIDTH_SPACE = "\u200b"


def _breakable(text: str, every: int = 24) -> str:
    """The text with line-break chances inside very long words (a pasted domain, say)."""
    words = []
    for word in text.split(" "):
        if len(word) > every:
            word = ZERO_WIDTH_SPACE.join(word[i : i + every] for i in range(0, len(word), every))
        words.append(word)
    return " ".join(words)


def _short_path(path: Path) -> str:
    """The path with the home folder written ``~``, as a person reads it."""
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def choose_data_directory(parent: QWidget | None, start: Path) -> Path | None:
    """Ask for a data directory (``postroom --choose-data-dir``); None when cancelled.

    A folder Postroom cannot write to is refused with the reason and asked again; a folder
    holding other files but no Postroom data is used only after a Yes.
    """
    while True:
        chosen = QFileDialog.getExistingDirectory(
            parent, "Open Postroom Data Directory", str(start)
        )
        if not chosen:
            return None
        folder = Path(chosen)
        start = folder
        if not os.access(folder, os.W_OK | os.X_OK):
            messages.error(
                parent,
                f"Postroom cannot write to {folder}. Choose a folder you may write to, "
                "or fix its permissions.",
            )
            continue
        data = paths.DataPaths(folder)
        if not data.database.exists() and any(folder.iterdir()):
            use_it = messages.ask(
                parent,
                f"{folder} holds other files and no Postroom data. Postroom will add "
                f"{data.database.name}, {data.mailboxes.name}/ and {data.queue.name}/ to it. "
                "Use this folder anyway?",
                default_yes=False,
            )
            if not use_it:
                continue
        return folder
