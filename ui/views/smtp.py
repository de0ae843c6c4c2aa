"""Servers > <host> > Protocols > SMTP > Default SMTP Virtual Server: Start, Stop, Pause."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from ui import messages
from ui.actions import MenuEntry, make_action, set_enabled
from ui.dialogs.smtp import RESTART_NOTE, SmtpServerDialog
from ui.views.container import ContainerView

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)


class SmtpVirtualServerView(ContainerView):
    """The virtual server node: lists Current Sessions; Start / Stop / Pause / Properties."""

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.smtp = console.smtp
        self.start = make_action(self, "&Start", "start", None, "Start the SMTP service")
        self.stop = make_action(self, "S&top", "stop", None, "Stop the SMTP service")
        self.pause = make_action(
            self,
            "&Pause",
            "pause",
            None,
            "Pause the SMTP service: new connections are refused, open sessions go on",
        )
        self.start.triggered.connect(self._start_or_resume)
        self.pause.triggered.connect(self.smtp.pause)
        self.stop.triggered.connect(self.smtp.stop)
        self.smtp.state_changed.connect(self.actions_changed)
        self.smtp.state_changed.connect(self.status_changed)

    def status_text(self) -> str:
        return self.smtp.status_text().removeprefix("SMTP: ").capitalize()

    def update_actions(self, rows: list[int]) -> None:
        state = self.smtp.state
        if state == "unavailable":
            reason = "The SMTP service is not installed."
            for action in (self.start, self.stop, self.pause):
                set_enabled(action, False, reason)
        else:
            reason = f"The SMTP service is {state}."
            set_enabled(self.start, state in ("stopped", "paused"), reason)
            set_enabled(self.stop, state in ("running", "paused"), reason)
            set_enabled(self.pause, state == "running", reason)
        set_enabled(self.std.properties, not rows)

    def _start_or_resume(self) -> None:
        """Start a stopped service; Start on a paused one resumes it, as in IIS."""
        if self.smtp.state == "paused":
            self.smtp.resume()
        else:
            self.smtp.start()

    def node_menu(self) -> list[MenuEntry]:
        return [
            self.start,
            self.stop,
            self.pause,
            None,
            self.std.refresh,
            self.std.export_list,
            None,
            self.std.properties,
        ]

    def toolbar_actions(self) -> list[QAction]:
        return [self.start, self.stop, self.pause]

    def properties(self, rows: list[int]) -> None:
        if rows:
            return
        saved = SmtpServerDialog.edit(self.parent_widget, self.console.store)
        if saved is not None and self.smtp.is_running:
            messages.info(self.parent_widget, RESTART_NOTE)
        self.status_changed.emit()
