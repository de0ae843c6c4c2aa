"""The SMTP connectors list (Routing Groups > Connectors) and a connector's address spaces."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from PySide6.QtCore import QObject, Qt

from app.connectors import display_pattern
from app.model import AddressSpace, SmtpConnector
from ui import icons
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)


def route_text(connector: SmtpConnector) -> str:
    """The General tab's choice as the list shows it: DNS, or the smart hosts."""
    if connector.use_dns:
        return "DNS"
    return "Smart hosts: " + ", ".join(str(host) for host in connector.smart_hosts)


def spaces_text(connector: SmtpConnector) -> str:
    """The address spaces as people read them: ``example.com (1), *.example.net (10)``."""
    return ", ".join(
        f"{display_pattern(space.pattern)} ({space.cost})" for space in connector.address_spaces
    )


def cost_text(connector: SmtpConnector) -> str:
    """The cost, or the range of costs when the address spaces differ."""
    costs = sorted({space.cost for space in connector.address_spaces})
    if not costs:
        return ""
    return str(costs[0]) if len(costs) == 1 else f"{costs[0]}-{costs[-1]}"


class ConnectorListModel(RowTableModel[SmtpConnector]):
    """SMTP connectors: Name | Route | Address Spaces | Relay | Cost. GUI thread only."""

    COL_NAME, COL_ROUTE, COL_SPACES, COL_RELAY, COL_COST = range(5)
    HEADERS = ("Name", "Route", "Address Spaces", "Relay", "Cost")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)

    def key(self, row: SmtpConnector) -> Hashable:
        return row.id

    def display(self, row: SmtpConnector, column: int) -> str:
        if column == self.COL_NAME:
            return row.name
        if column == self.COL_ROUTE:
            return route_text(row)
        if column == self.COL_SPACES:
            return spaces_text(row)
        if column == self.COL_RELAY:
            return "Allowed" if row.relay else "No"
        return cost_text(row)

    def sort_value(self, row: SmtpConnector, column: int) -> Any:
        if column == self.COL_COST:
            return min((space.cost for space in row.address_spaces), default=0)
        if column == self.COL_RELAY:
            return int(row.relay)
        return super().sort_value(row, column)

    def decoration(self, row: SmtpConnector, column: int) -> Any:
        return icons.icon("connectors")

    def alignment(self, row: SmtpConnector, column: int) -> Qt.AlignmentFlag | None:
        return Qt.AlignmentFlag.AlignRight if column == self.COL_COST else None

    def tooltip(self, row: SmtpConnector, column: int) -> str | None:
        if column == self.COL_RELAY and row.relay:
            return "Anyone's mail for these address spaces is accepted and sent onward."
        if column == self.COL_NAME and row.note:
            return row.note
        return None


class AddressSpaceModel(RowTableModel[AddressSpace]):
    """A connector's Address Space tab: Type | Address | Cost, edited through the sheet."""

    COL_TYPE, COL_ADDRESS, COL_COST = range(3)
    HEADERS = ("Type", "Address", "Cost")

    def key(self, row: AddressSpace) -> Hashable:
        return row.pattern

    def display(self, row: AddressSpace, column: int) -> str:
        if column == self.COL_TYPE:
            return row.type
        if column == self.COL_ADDRESS:
            return display_pattern(row.pattern)
        return str(row.cost)

    def sort_value(self, row: AddressSpace, column: int) -> Any:
        if column == self.COL_COST:
            return row.cost
        return super().sort_value(row, column)

    def alignment(self, row: AddressSpace, column: int) -> Qt.AlignmentFlag | None:
        return Qt.AlignmentFlag.AlignRight if column == self.COL_COST else None

    def spaces(self) -> tuple[AddressSpace, ...]:
        return tuple(self.rows())
