"""A node's child nodes as a list, for the result pane of a folder-like node."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from ui import icons
from ui.models.table import RowTableModel
from ui.node import Node

log = logging.getLogger(__name__)


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
