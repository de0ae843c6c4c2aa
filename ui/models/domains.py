"""The Domains list and a domain's DNS results as Qt models (the route rule: app.dns.routes)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

from app.connectors import display_pattern
from app.directory import addressing
from app.dkim.catalog import DomainKeys
from app.dkim.keys import DkimKey, KeyRole
from app.dkim.published import zone_line
from app.dns.dkim_records import Published
from app.dns.findings import CheckResult, Status
from app.dns.health import CheckedResults
from app.dns.routes import Route, RouteState
from app.model import RecipientPolicy, SmtpConnector
from ui import icons
from ui.models.table import RowTableModel

Index = QModelIndex | QPersistentModelIndex

DomainKind = Literal["authoritative", "shared", "unused", "relay", "space"]

KIND_TEXT: dict[str, str] = {
    "authoritative": "Authoritative",
    "shared": "Shared namespace",
    "unused": "Not accepted",
    "relay": "Relay domain",
    "space": "Address space",
}
#: The kinds a policy names (hosted here, so their DNS health is checked); the others come from
#: the SMTP connectors' address spaces, which only have a route onward.
POLICY_KINDS = ("authoritative", "shared", "unused")
DELIVERED_HERE = "Delivered here"
NOT_HOSTED = "Not hosted here: DNS health is checked for the domains on policies only."
STATUS_TEXT = {
    Status.OK: "OK",
    Status.WARNING: "Warning",
    Status.ERROR: "Error",
    Status.UNKNOWN: "Unknown",
}
CHECK_TEXT = {
    "mx": "MX records",
    "mx-target": "MX host",
    "null-mx": "Null MX",
    "spf": "SPF",
    "dmarc": "DMARC",
    "dkim": "DKIM",
    "dkim-pending": "DKIM (new key)",
    "server-a": "This server: IPv4 address",
    "server-aaaa": "This server: IPv6 address",
    "ptr-v4": "This server: reverse DNS (IPv4)",
    "ptr-v6": "This server: reverse DNS (IPv6)",
}
NOT_CHECKED = "Not checked"
CHECKING = "Checking..."


def status_icon(status: Status | None) -> QIcon:
    """The icon of a check's status (None: not checked)."""
    if status is Status.OK:
        return icons.icon("apply")
    if status is Status.WARNING:
        return icons.icon("warning")
    if status is Status.ERROR:
        return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
    return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxQuestion)


def short_time(moment: datetime) -> str:
    """A check's time in local time: the clock time today, the date and time before."""
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


# -- the route onward ------------------------------------------------------------------------------


#: A shared domain's route before Check DNS has asked (and no smart host decides it).
NOT_CHECKED_ROUTE = Route(
    RouteState.UNCONFIRMED,
    "No smart host is set and DNS has not been checked yet, so nothing confirms that mail for "
    "addresses that are not here can go onward.",
    "Use Check DNS, or set a smart host.",
)


# -- DKIM ----------------------------------------------------------------------------------------

PUBLISHED_TEXT = {
    Published.MATCHING: "published",
    Published.MISSING: "record missing",
    Published.MISMATCHED: "record does not match",
    Published.UNKNOWN: "DNS did not answer",
}
PUBLISHED_STATUS = {
    Published.MATCHING: Status.OK,
    Published.MISSING: Status.ERROR,
    Published.MISMATCHED: Status.ERROR,
    Published.UNKNOWN: Status.UNKNOWN,
}


@dataclass(frozen=True)
class DkimCell:
    """A signed domain's keys and, once DNS was asked, what it publishes for each selector."""

    keys: DomainKeys
    published: dict[str, Published] = field(default_factory=dict)

    @property
    def signing(self) -> DkimKey | None:
        """The signing key as stored, sound or not."""
        return next((k for k in self.keys.keys if k.role is KeyRole.SIGNING), None)

    @property
    def pending(self) -> DkimKey | None:
        return self.keys.pending

    @property
    def unsigned(self) -> str:
        """Why its mail goes out unsigned; "" when it is signed."""
        return self.keys.warning

    @property
    def status(self) -> Status | None:
        """The signing key's state as a check status; None before DNS was asked."""
        if self.unsigned:
            return Status.ERROR
        key = self.signing
        if key is None or key.selector not in self.published:
            return None
        return PUBLISHED_STATUS[self.published[key.selector]]

    def records(self) -> str:
        """The zone-file lines of the keys whose record is known: the signing key, then the new
        one a rotation waits to see."""
        return "\n".join(line for key in self.keys.keys if (line := zone_line(key)))


def dkim_text(row: DomainRow) -> str:
    """The DKIM column: the signing selector and its record, a waiting rotation, or why the
    domain's mail goes out unsigned."""
    cell = row.dkim
    if cell is None:
        return ""
    if cell.unsigned:
        return "Unsigned: its DKIM key cannot be used"
    key = cell.signing
    if key is None:
        return ""
    state = cell.published.get(key.selector)
    text = f"{key.selector}: {PUBLISHED_TEXT[state] if state else 'not checked'}"
    pending = cell.pending
    if pending is not None:
        text += f"; new key {pending.selector} waits for its record"
    return text


def dkim_tooltip(row: DomainRow) -> str | None:
    cell = row.dkim
    if cell is None:
        return None
    if cell.unsigned:
        return cell.unsigned
    lines = []
    for key in cell.keys.keys:
        state = cell.published.get(key.selector)
        role = "Signs with" if key.role is KeyRole.SIGNING else "New key, waiting"
        seen = PUBLISHED_TEXT[state] if state else "not checked (use Check DNS)"
        lines.append(f"{role}: {key.record_name} ({key.algorithm}), {seen}")
        if key.problem:
            lines.append(f"Problem: {key.problem}")
    lines.append("Copy DNS Record copies the TXT records to publish.")
    return "\n".join(lines)


# -- the Domains list --------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainRow:
    """One domain of the Domains list."""

    #: The domain as stored (lower-case A-labels).
    domain: str
    kind: DomainKind
    #: The policies whose SMTP rules name it, in priority order (enabled rules first).
    policies: tuple[str, ...]
    dns: CheckedResults | None = None
    checking: bool = False
    #: Shared domains only: where mail for unknown addresses goes.
    route: Route | None = None
    #: Names of policies that have it only on rules that are not selected.
    unselected_in: tuple[str, ...] = field(default=())
    #: Relay domains and connector address spaces: the connectors that name the pattern.
    connectors: tuple[str, ...] = field(default=())
    #: Domains Postroom signs for: their DKIM keys (None until read, and for the others).
    dkim: DkimCell | None = None

    @property
    def hosted(self) -> bool:
        """Whether a policy names it (else it is only a connector's address space)."""
        return self.kind in POLICY_KINDS

    @property
    def shown(self) -> str:
        return display_pattern(self.domain)

    @property
    def status(self) -> Status | None:
        return self.dns.status if self.dns is not None else None

    @property
    def flagged(self) -> bool:
        """Whether the list shows a warning on the domain itself (not its DNS)."""
        if self.kind == "unused":
            return True
        if not self.hosted:
            return self.route is not None and self.route.state is RouteState.NONE
        if self.dkim is not None and self.dkim.unsigned:
            return True
        return self.kind == "shared" and (self.route is None or not self.route.ok)

    def flag_text(self) -> str:
        if self.kind == "unused":
            names = ", ".join(f"'{name}'" for name in self.unselected_in)
            return (
                f"No selected address rule names {self.shown}, so Postroom refuses its mail "
                f"(550 5.7.1 Unable to relay). To accept it, select the address on the E-Mail "
                f"Addresses tab of {names}."
            )
        if self.kind == "shared":
            route = self.route or NOT_CHECKED_ROUTE
            return route.text
        if not self.hosted and self.route is not None:
            return self.route.text
        if self.dkim is not None:
            return self.dkim.unsigned
        return ""

    def route_text(self) -> str:
        """The Route column: where its mail goes (unknown addresses, for a shared domain)."""
        if self.kind == "authoritative":
            return DELIVERED_HERE
        if self.kind == "unused":
            return ""
        if self.kind == "shared":
            return (self.route or NOT_CHECKED_ROUTE).summary
        return self.route.summary if self.route is not None else ""


def domain_rows(policies: Sequence[RecipientPolicy]) -> list[DomainRow]:
    """Every domain on an SMTP rule of any policy: authoritative if an enabled rule for it is
    responsible, shared if enabled rules name it but none is, and "not accepted" if only rules
    that are not selected name it. ``policies`` in priority order (as ``list_policies``)."""
    enabled_by: dict[str, list[str]] = {}
    disabled_by: dict[str, list[str]] = {}
    responsible: dict[str, bool] = {}
    for policy in policies:
        for rule in policy.rules:
            if not rule.is_smtp:
                continue
            domain = addressing.split_address(rule.address)[1].lower()
            if not domain:
                continue
            if rule.enabled:
                responsible[domain] = responsible.get(domain, False) or rule.responsible
                _add(enabled_by, domain, policy.name)
            else:
                _add(disabled_by, domain, policy.name)
    rows = []
    for domain in sorted(set(enabled_by) | set(disabled_by)):
        if domain in enabled_by:
            kind: DomainKind = "authoritative" if responsible[domain] else "shared"
            names = enabled_by[domain] + [
                name for name in disabled_by.get(domain, []) if name not in enabled_by[domain]
            ]
            rows.append(DomainRow(domain, kind, tuple(names)))
        else:
            names = disabled_by[domain]
            rows.append(DomainRow(domain, "unused", tuple(names), unselected_in=tuple(names)))
    return rows


def connector_rows(connectors: Sequence[SmtpConnector], hosted: Iterable[str]) -> list[DomainRow]:
    """A row per address-space pattern of the connectors that no policy names (``hosted``):
    a relay domain when a connector that names it allows relaying, else an address space."""
    skip = set(hosted)
    named: dict[str, list[SmtpConnector]] = {}
    for connector in connectors:
        for space in connector.address_spaces:
            if space.pattern not in skip:
                named.setdefault(space.pattern, []).append(connector)
    return [
        DomainRow(
            pattern,
            "relay" if any(c.relay for c in carriers) else "space",
            (),
            connectors=tuple(c.name for c in carriers),
        )
        for pattern, carriers in sorted(named.items())
    ]


def _add(index: dict[str, list[str]], domain: str, name: str) -> None:
    names = index.setdefault(domain, [])
    if name not in names:
        names.append(name)


def dns_text(row: DomainRow) -> str:
    """The DNS column: the worst finding, or that nothing was checked yet."""
    if not row.hosted:
        return ""
    if row.checking:
        return CHECKING
    if row.dns is None:
        return NOT_CHECKED
    results = row.dns.results
    status = row.dns.status
    if status is Status.OK:
        return f"OK ({len(results)} checks)"
    worst = [result for result in results if result.status is status]
    more = sum(1 for result in results if result.status is not Status.OK) - 1
    text = f"{STATUS_TEXT[status]}: {worst[0].summary}"
    return f"{text} (+{more} more)" if more > 0 else text


def dns_tooltip(row: DomainRow) -> str:
    if not row.hosted:
        return NOT_HOSTED
    if row.dns is None:
        return "DNS has not been checked yet. Use Check DNS." if not row.checking else CHECKING
    lines = [
        f"{STATUS_TEXT[result.status]}: {result.summary}"
        for result in row.dns.results
        if result.status is not Status.OK
    ] or ["Every check is OK."]
    lines.append(f"Checked at {short_time(row.dns.checked_at)}. DNS Details shows what to do.")
    return "\n".join(lines)


class DomainListModel(RowTableModel[DomainRow]):
    """Domains: Domain | Type | Policies | DNS | Route | DKIM. GUI thread only."""

    COL_DOMAIN, COL_TYPE, COL_POLICIES, COL_DNS, COL_ROUTE, COL_DKIM = range(6)
    HEADERS = ("Domain", "Type", "Policies", "DNS", "Route", "DKIM")

    def key(self, row: DomainRow) -> Hashable:
        return row.domain

    def display(self, row: DomainRow, column: int) -> str:
        if column == self.COL_DOMAIN:
            return row.shown
        if column == self.COL_TYPE:
            return KIND_TEXT[row.kind]
        if column == self.COL_POLICIES:
            return ", ".join(row.policies)
        if column == self.COL_ROUTE:
            return row.route_text()
        if column == self.COL_DKIM:
            return dkim_text(row)
        return dns_text(row)

    def sort_value(self, row: DomainRow, column: int) -> Any:
        if column == self.COL_TYPE:
            return list(KIND_TEXT).index(row.kind)
        if column == self.COL_DNS:
            order = {Status.ERROR: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.OK: 3}
            return order.get(row.status, 4) if row.status is not None else 4
        if column == self.COL_DKIM:
            order = {Status.ERROR: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.OK: 3}
            status = row.dkim.status if row.dkim is not None else None
            return (order.get(status, 4) if status is not None else 4, dkim_text(row))
        return super().sort_value(row, column)

    def decoration(self, row: DomainRow, column: int) -> Any:
        if row.flagged:
            return icons.icon("warning")
        return icons.icon("domains" if row.hosted else "connectors")

    def tooltip(self, row: DomainRow, column: int) -> str | None:
        if column == self.COL_DNS:
            return dns_tooltip(row)
        if column == self.COL_ROUTE and row.route is not None:
            return row.route.text
        if column == self.COL_DKIM:
            return dkim_tooltip(row)
        if column in (self.COL_DOMAIN, self.COL_TYPE) and row.flag_text():
            return row.flag_text()
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (
            role == Qt.ItemDataRole.DecorationRole
            and index.isValid()
            and index.column() == self.COL_DNS
            and index.row() < self.rowCount()
        ):
            row = self.row_object(index.row())
            return None if row.checking or not row.hosted else status_icon(row.status)
        if (
            role == Qt.ItemDataRole.DecorationRole
            and index.isValid()
            and index.column() == self.COL_DKIM
            and index.row() < self.rowCount()
        ):
            cell = self.row_object(index.row()).dkim
            if cell is None or cell.status is None:
                return None
            return status_icon(cell.status)
        return super().data(index, role)


# -- one domain's results ------------------------------------------------------------------------


class CheckResultModel(RowTableModel[tuple[int, CheckResult]]):
    """A domain's DNS checks: Check | Status | Finding. GUI thread only."""

    COL_CHECK, COL_STATUS, COL_FINDING = range(3)
    HEADERS = ("Check", "Status", "Finding")

    def key(self, row: tuple[int, CheckResult]) -> Hashable:
        return row[0]

    def set_results(self, results: Iterable[CheckResult]) -> None:
        self.set_rows(list(enumerate(results)))

    def result(self, row: int) -> CheckResult:
        return self.row_object(row)[1]

    def display(self, row: tuple[int, CheckResult], column: int) -> str:
        result = row[1]
        if column == self.COL_CHECK:
            return CHECK_TEXT.get(result.check, result.check)
        if column == self.COL_STATUS:
            return STATUS_TEXT[result.status]
        return result.summary

    def sort_value(self, row: tuple[int, CheckResult], column: int) -> Any:
        if column == self.COL_CHECK:
            return row[0]
        return super().sort_value(row, column)

    def decoration(self, row: tuple[int, CheckResult], column: int) -> Any:
        return status_icon(row[1].status)

    def tooltip(self, row: tuple[int, CheckResult], column: int) -> str | None:
        result = row[1]
        return f"{result.summary}\n\n{result.advice}" if result.advice else result.summary
