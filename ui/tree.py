"""The console tree: which nodes exist, where, and which result-pane view each one shows.

To add a node, write its view in ``ui/views/<node>.py`` (a ``ResultView`` subclass) and add one
``Node(...)`` line to ``build_tree`` below; the main window does the rest (menus, toolbar, the
remembered columns under the node's ``key``). GUI thread only.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from app import organization
from ui import icons

if TYPE_CHECKING:
    from ui.console import Console
    from ui.views.base import ResultView

ViewFactory = Callable[["Console", "Node"], "ResultView"]
Index = QModelIndex | QPersistentModelIndex


class Node:
    """One console tree node. ``key`` is a stable path used to remember its columns."""

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


def build_tree(console: Console) -> Node:
    """The console tree of DESIGN §8 (the parts built so far). A node without a view lists its
    children (``ContainerView``)."""
    from ui.views.domains import DOMAINS_TEXT, DomainsView
    from ui.views.mailboxes import MAILBOXES_TEXT, STORE_TEXT, MailboxesView
    from ui.views.policies import RecipientPoliciesView
    from ui.views.recipients import AllRecipientsView
    from ui.views.rus import RecipientUpdateServicesView
    from ui.views.sessions import CurrentSessionsView
    from ui.views.smtp import SmtpVirtualServerView
    from ui.views.tracking import TOOLS_TEXT, TRACKING_TEXT, MessageTrackingView

    org = organization.get_organization(console.store)
    org_name = org.name if org else organization.DEFAULT_ORGANIZATION_NAME
    host = socket.gethostname().split(".")[0].upper() or "LOCALHOST"

    root = Node("organization", f"{org_name} (Postroom)", "organization")

    recipients = root.add(
        Node("recipients", "Recipients", "recipients", description="Policies and recipients")
    )
    recipients.add(
        Node(
            "recipients/policies",
            "Recipient Policies",
            "recipient-policies",
            RecipientPoliciesView,
            "Which recipients get which e-mail addresses",
        )
    )
    recipients.add(
        Node(
            "recipients/update-services",
            "Recipient Update Services",
            "recipient-update-service",
            RecipientUpdateServicesView,
            "Stamps the policies' addresses on recipients",
        )
    )
    recipients.add(Node("recipients/domains", "Domains", "domains", DomainsView, DOMAINS_TEXT))
    recipients.add(
        Node(
            "recipients/all",
            "All Recipients",
            "all-recipients",
            AllRecipientsView,
            "Every user, contact and group, with its primary address and policy",
        )
    )

    servers = root.add(
        Node("servers", "Servers", "servers", description="This organization's servers")
    )
    server = servers.add(Node("servers/host", host, "server", description="This computer"))
    protocols = server.add(
        Node("servers/host/protocols", "Protocols", "protocols", description="Mail protocols")
    )
    smtp = protocols.add(
        Node("servers/host/protocols/smtp", "SMTP", "protocols", description="SMTP virtual servers")
    )
    virtual_server = smtp.add(
        Node(
            "servers/host/protocols/smtp/default",
            "Default SMTP Virtual Server",
            "smtp-virtual-server",
            SmtpVirtualServerView,
            "The embedded SMTP service",
        )
    )
    virtual_server.add(
        Node(
            "servers/host/protocols/smtp/default/sessions",
            "Current Sessions",
            "current-sessions",
            CurrentSessionsView,
            "Clients connected to the SMTP service now",
        )
    )
    mailbox_store = server.add(
        Node("servers/host/mailbox-store", "Mailbox Store", "mailbox-store", None, STORE_TEXT)
    )
    mailbox_store.add(
        Node(
            f"{mailbox_store.key}/mailboxes",
            "Mailboxes",
            "mailbox-store",
            MailboxesView,
            MAILBOXES_TEXT,
        )
    )
    tools = root.add(Node("tools", "Tools", "tools", None, TOOLS_TEXT))
    tools.add(
        Node(
            "tools/message-tracking",
            "Message Tracking Center",
            "message-tracking",
            MessageTrackingView,
            TRACKING_TEXT,
        )
    )
    return root


class ConsoleTreeModel(QAbstractItemModel):
    """The console tree as a Qt model: one column, the node's title and icon. GUI thread only."""

    def __init__(self, root: Node, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.root = root

    def node(self, index: Index) -> Node | None:
        if not index.isValid():
            return None
        node = index.internalPointer()
        return node if isinstance(node, Node) else None

    def index_of(self, node: Node) -> QModelIndex:
        if node is self.root:
            return self.createIndex(0, 0, node)
        return self.createIndex(node.row(), 0, node)

    def node_changed(self, node: Node) -> None:
        """Tell the views that a node's title or icon changed."""
        index = self.index_of(node)
        self.dataChanged.emit(index, index)

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if column != 0 or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(0, 0, self.root) if row == 0 else QModelIndex()
        node = self.node(parent)
        if node is None or row >= len(node.children):
            return QModelIndex()
        return self.createIndex(row, 0, node.children[row])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        node = self.node(index)
        if node is None or node.parent is None:
            return QModelIndex()
        return self.index_of(node.parent)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.column() > 0:
            return 0
        if not parent.isValid():
            return 1
        node = self.node(parent)
        return len(node.children) if node else 0

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self.node(index)
        if node is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return node.title
        if role == Qt.ItemDataRole.DecorationRole:
            return icons.icon(node.icon)
        if role == Qt.ItemDataRole.ToolTipRole:
            return node.description or None
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return "Tree"
        return None
