"""The result pane of a folder-like node: its child nodes, opened with a double-click."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from ui import icons
from ui.actions import MenuEntry
from ui.formatting import plural
from ui.models.table import RowTableModel
from ui.node import Node
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console


class ChildNodesModel(RowTableModel[Node]):
    """The children of a tree node, as MMC lists them in the result pane."""

    COL_NAME, COL_DESCRIPTION = range(2)
    HEADERS = ("Name", "Description")

    def key(self, row: Node) -> Hashable:
        return row.key

    def display(self, row: Node, column: int) -> str:
        return row.title if column == self.COL_NAME else row.description

    def sort_value(self, row: Node, column: int) -> Any:
        # Keep the tree's own order when sorted by name, as MMC does for containers.
        return row.row() if column == self.COL_NAME else row.description.casefold()

    def decoration(self, row: Node, column: int) -> Any:
        return icons.icon(row.icon)


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
