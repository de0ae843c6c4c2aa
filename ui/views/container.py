"""The result pane of a folder-like node: its child nodes, opened with a double-click."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ui.actions import MenuEntry
from ui.formatting import plural
from ui.models.nodes import ChildNodesModel
from ui.node import Node
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console

log = logging.getLogger(__name__)


class ContainerView(ResultView):
    """A node whose result pane lists its children; double-click opens one."""

    default_column_widths = (260, 360)

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.list_model = ChildNodesModel(self)
        self.model = self.list_model

    def refresh(self) -> None:
        self.list_model.set_rows(self.node.children)

    def status_text(self) -> str:
        return plural(len(self.node.children), "object")

    def activate(self, row: int) -> None:
        self.console.navigate_requested.emit(self.list_model.row_object(row))

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [self.std.refresh]
