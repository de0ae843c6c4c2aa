"""A console tree node: its key, title, icon, description, children and view factory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

ViewFactory = Callable[[Any, "Node"], Any]
"""Makes a node's view: ``factory(console, node) -> ResultView`` (see ``ui.tree.make_view``)."""


class Node:
    """One console tree node. ``key`` is a stable path used to remember its columns.

    ``view_factory`` makes the node's result-pane view from the console and the node; the tree's
    construction (``ui.tree``) sets it. None: the node lists its children. Its type says only
    "a callable" because the views sit above this module (they all hold a Node).
    """

    def __init__(
        self,
        key: str,
        title: str,
        icon: str,
        view: ViewFactory | None = None,
        description: str = "",
        children: list[Node] | None = None,
    ) -> None:
        self.key = key
        self.title = title
        self.icon = icon
        self.view_factory = view
        self.description = description
        self.children: list[Node] = []
        self.parent: Node | None = None
        for child in children or []:
            self.add(child)

    def add(self, child: Node) -> Node:
        child.parent = self
        self.children.append(child)
        return child

    def row(self) -> int:
        return self.parent.children.index(self) if self.parent else 0

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, key: str) -> Node | None:
        return next((node for node in self.walk() if node.key == key), None)

    def path(self) -> list[Node]:
        return [*(self.parent.path() if self.parent else []), self]

    def __repr__(self) -> str:
        return f"Node({self.key!r})"
