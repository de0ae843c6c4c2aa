"""The console tree's construction: which nodes exist, where, and which view each one shows.

To add a node, write its view in ``ui/views/<node>.py`` (a ``ResultView`` subclass) and add one
``Node(...)`` line to ``build_tree`` below; the main window does the rest (menus, toolbar, the
remembered columns under the node's ``key``). The node type is ``ui.node.Node``, the Qt model
of the tree ``ui.models.tree.ConsoleTreeModel``. GUI thread only.
"""

from __future__ import annotations

import logging
import socket

from app import organization
from ui.console import Console
from ui.node import Node
from ui.views.base import ResultView
from ui.views.connectors import (
    CONNECTORS_TEXT,
    FIRST_ROUTING_GROUP_TEXT,
    ROUTING_GROUPS_TEXT,
    ConnectorsView,
)
from ui.views.container import ContainerView
from ui.views.domains import DOMAINS_TEXT, DomainsView
from ui.views.mailboxes import MAILBOXES_TEXT, STORE_TEXT, MailboxesView, MailboxStoreView
from ui.views.policies import RecipientPoliciesView
from ui.views.queues import QUEUES_TEXT, QueuesView
from ui.views.recipients import AllRecipientsView
from ui.views.rus import RecipientUpdateServicesView
from ui.views.sessions import CurrentSessionsView
from ui.views.smtp import SmtpVirtualServerView
from ui.views.tracking import TOOLS_TEXT, TRACKING_TEXT, MessageTrackingView

log = logging.getLogger(__name__)


def build_tree(console: Console) -> Node:
    """The console tree of DESIGN §8 (the parts built so far). A node without a view lists its
    children (``ContainerView``)."""
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
    virtual_server.add(
        Node(
            "servers/host/protocols/smtp/default/queues",
            "Queues",
            "queues",
            QueuesView,
            QUEUES_TEXT,
        )
    )
    mailbox_store = server.add(
        Node(
            "servers/host/mailbox-store",
            "Mailbox Store",
            "mailbox-store",
            MailboxStoreView,
            STORE_TEXT,
        )
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
    routing_groups = root.add(
        Node("routing-groups", "Routing Groups", "servers", None, ROUTING_GROUPS_TEXT)
    )
    first_group = routing_groups.add(
        Node(
            "routing-groups/first", "First Routing Group", "servers", None, FIRST_ROUTING_GROUP_TEXT
        )
    )
    first_group.add(
        Node(
            "routing-groups/first/connectors",
            "Connectors",
            "connectors",
            ConnectorsView,
            CONNECTORS_TEXT,
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


def make_view(console: Console, node: Node) -> ResultView:
    """The result-pane view of ``node``: the one its construction named, else its children."""
    if node.view_factory is None:
        return ContainerView(console, node)
    view = node.view_factory(console, node)
    if not isinstance(view, ResultView):
        raise TypeError(f"the view of {node!r} is not a ResultView: {view!r}")
    return view
