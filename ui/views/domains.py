"""Recipients > Domains: every domain of every policy, its type, its policies and its DNS health.

Check DNS runs the checks of ``app.dns.health`` on the console's task runner: the configuration
is read from the settings here on the GUI thread, ``DnsHealthCache.check`` and the route lookups
run on a worker, and the results come back with the time they were taken. The list shows the
cached results at once and never waits for DNS.

The DKIM column: each refresh reads (and for a new domain makes) the DKIM keys on a worker; Check
DNS also looks up their records there, which is when a rotation's new key starts signing. Copy
DNS Record puts the records to publish on the clipboard.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QGuiApplication

from app import policies
from app.connectors.catalog import get_connector, list_connectors
from app.dkim.catalog import DomainKeys, prepare_keys
from app.dkim.published import DomainStatus, as_keys, check_published, expectations
from app.dns.dkim_records import Published
from app.dns.health import DnsHealthCache
from app.dns.lookup import DnsConfig
from app.dns.routes import (
    ConnectorHop,
    HopKind,
    NextHop,
    Route,
    RouteState,
    ThisServer,
    dns_config_from_settings,
    find_route,
    route_by_connectors,
    settled_route,
)
from app.errors import PostroomError
from app.model import ANY_DOMAIN, RecipientPolicy, SmtpConnector
from app.settings import Settings, load_settings
from app.store import Store
from ui import messages
from ui.actions import MenuEntry, make_action, set_enabled
from ui.dialogs.connector import ConnectorDialog
from ui.dialogs.domain_dns import DomainDnsDialog
from ui.dialogs.policy import PolicyDialog
from ui.formatting import plural
from ui.models.domains import (
    NOT_CHECKED_ROUTE,
    DkimCell,
    DomainListModel,
    DomainRow,
    connector_rows,
    domain_rows,
)
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

DOMAINS_TEXT = (
    "Every domain on a policy, its type and its DNS health; relay domains and connector address "
    "spaces with their route"
)
CHECK_RUNNING = "A DNS check is running; its results appear when it is done."


def check_domains(
    cache: DnsHealthCache,
    domains: list[str],
    shared: list[str],
    config: DnsConfig,
    settings: Settings,
    connectors: list[SmtpConnector],
    store: Store,
) -> tuple[dict[str, Route], list[DomainStatus]]:
    """Worker thread: look up the DKIM records of ``domains`` (a rotation's new key signs once
    its record is seen), check them (and this server) into ``cache``, and find the route onward
    of each ``shared`` domain (and connector address space) by DNS. Blocks on DNS for up to a
    few lifetimes."""
    dkim: list[DomainStatus] = []
    if domains:
        dkim = check_published(store, config, domains)
        cache.check(domains, config, dkim=expectations([as_keys(status) for status in dkim]))
    routes = {
        domain: find_route(domain, settings, connectors=connectors, config=config)
        for domain in shared
    }
    return routes, dkim


class DomainsView(ResultView):
    """The Domains node. The DNS results and routes live as long as the console window."""

    default_sort_column = DomainListModel.COL_DOMAIN
    default_column_widths = (150, 150, 120, 150, 400, 260)

    checked = Signal()
    """A DNS check ended (successfully or not); the cache and routes are up to date."""
    dkim_read = Signal()
    """The DKIM keys were read (or could not be); the DKIM column shows them."""

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.list_model = DomainListModel(self)
        self.model = self.list_model
        self.cache = DnsHealthCache()
        self.routes: dict[str, Route] = {}
        self.checking: set[str] = set()
        self._policies: list[RecipientPolicy] = []
        self._settings: Settings | None = None
        self._connectors: list[SmtpConnector] = []
        self._selection: list[int] = []
        self.dkim_keys: dict[str, DomainKeys] = {}
        self.dkim_published: dict[str, dict[str, Published]] = {}
        self.dkim_error = ""
        self._dkim_reading = False
        self._dkim_again = False
        self.check_dns = make_action(
            self,
            "Check &DNS",
            "check-dns",
            None,
            "Check the DNS records of the selected domains (all domains when none is selected)",
        )
        self.dns_details = make_action(
            self,
            "DNS &Details...",
            "check-dns",
            None,
            "What DNS says about the domain, and which records to add",
        )
        self.copy_record = make_action(
            self,
            "&Copy DNS Record",
            None,
            None,
            "Copy the domain's DKIM TXT record (zone-file syntax) to publish in its DNS",
        )
        self.check_dns.triggered.connect(lambda: self.start_check(self._selected_domains()))
        self.dns_details.triggered.connect(self._show_details)
        self.copy_record.triggered.connect(self._copy_record)
        console.watcher.changed.connect(self.refresh)

    # -- list ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the domains from the policies, and the connectors and the smart host that
        route them onward (three short reads), and show the cached DNS results."""
        try:
            self._policies = policies.list_policies(self.console.store)
            self._settings = load_settings(self.console.store)
            self._connectors = list_connectors(self.console.store)
        except PostroomError as error:
            messages.error(self.parent_widget, error)
            return
        self._show_rows()
        self._read_dkim()

    def _read_dkim(self) -> None:
        """Read the DKIM keys on a worker (making keys for new domains); one read at a time."""
        if self._dkim_reading:
            self._dkim_again = True
            return
        self._dkim_reading = True
        self.console.tasks.submit(
            "read DKIM keys",
            prepare_keys,
            self.console.store,
            on_success=self._dkim_done,
            on_failure=self._dkim_failed,
        )

    def _dkim_done(self, entries: list[DomainKeys]) -> None:
        self.dkim_keys = {entry.domain: entry for entry in entries}
        self.dkim_error = ""
        self._dkim_finished()

    def _dkim_failed(self, error: Exception) -> None:
        # Shown in the DKIM column rather than a box: a refresh runs at every store change.
        self.dkim_error = str(error)
        log.warning("cannot read the DKIM keys: %s", error)
        self._dkim_finished()

    def _dkim_finished(self) -> None:
        self._dkim_reading = False
        if self._dkim_again:
            self._dkim_again = False
            self._read_dkim()
            return
        self._show_rows()
        self.dkim_read.emit()

    def _dkim_cell(self, domain: str) -> DkimCell | None:
        keys = self.dkim_keys.get(domain)
        if keys is None:
            if not self.dkim_error:
                return None
            keys = DomainKeys(domain, (), self.dkim_error)
        return DkimCell(keys, self.dkim_published.get(domain, {}))

    def _show_rows(self) -> None:
        rows = []
        hosted = domain_rows(self._policies)
        for row in connector_rows(self._connectors, (row.domain for row in hosted)):
            rows.append(
                dataclasses.replace(
                    row, checking=row.domain in self.checking, route=self._space_route(row)
                )
            )
        for row in hosted:
            route: Route | None = None
            if row.kind == "shared":
                route = self._settled_route(row.domain) or self.routes.get(
                    row.domain, NOT_CHECKED_ROUTE
                )
            rows.append(
                DomainRow(
                    row.domain,
                    row.kind,
                    row.policies,
                    dns=self.cache.cached(row.domain),
                    checking=row.domain in self.checking,
                    route=route,
                    unselected_in=row.unselected_in,
                    dkim=self._dkim_cell(row.domain) if row.kind == "authoritative" else None,
                )
            )
        self.list_model.set_rows(rows)
        self.status_changed.emit()
        self.actions_changed.emit()

    def _space_route(self, row: DomainRow) -> Route | None:
        """A relay domain's or address space's route: the connectors that name it, and where
        they send it (DNS answers it after Check DNS for a domain; a pattern has no MX)."""
        if self._settings is None:
            return None
        if not row.domain.startswith(ANY_DOMAIN):
            settled = self._settled_route(row.domain)
            if settled is not None:
                return settled
            if row.domain in self.routes:
                return self.routes[row.domain]
        hops = tuple(
            sorted(
                (
                    ConnectorHop(connector, space)
                    for connector in self._connectors
                    for space in connector.address_spaces
                    if space.pattern == row.domain
                ),
                key=lambda hop: (hop.cost, hop.connector.name.casefold()),
            )
        )
        route = route_by_connectors(hops, ThisServer.from_settings(self._settings))
        if route is not None:
            return route
        how = NextHop(row.domain, HopKind.CONNECTOR, connectors=hops).text
        if row.domain.startswith(ANY_DOMAIN):
            return Route(RouteState.ROUTED, f"{how[:-1]}: each domain by its MX records.")
        return Route(
            RouteState.UNCONFIRMED, f"{how} DNS has not been checked yet.", "Use Check DNS."
        )

    def _settled_route(self, domain: str) -> Route | None:
        """The route the connectors and the smart host give without DNS (None: DNS decides)."""
        if self._settings is None:
            return None
        return settled_route(domain, self._settings, self._connectors)

    def row(self, domain: str) -> DomainRow | None:
        """The list's row of a domain (A-label), None when it is not listed."""
        number = self.list_model.row_of(domain)
        return self.list_model.row_object(number) if number is not None else None

    def owner(self, domain: str) -> RecipientPolicy | None:
        """The policy a double-click opens: the highest-priority one that names the domain."""
        row = self.row(domain)
        if row is None or not row.policies:
            return None
        return next((p for p in self._policies if p.name == row.policies[0]), None)

    def status_text(self) -> str:
        text = plural(self.list_model.rowCount(), "domain")
        if self.checking:
            text += " - checking DNS..."
        else:
            server = self.cache.cached_server()
            if server is not None:
                text += f" - DNS checked at {_clock(server.checked_at)}"
        return text

    def is_busy(self) -> bool:
        return bool(self.checking)

    def _selected_domains(self) -> list[str]:
        rows = self.list_model.rows()
        chosen = [rows[number].domain for number in self._selection if number < len(rows)]
        return chosen or [row.domain for row in rows]

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        self._selection = list(rows)
        one = self.list_model.row_object(rows[0]) if len(rows) == 1 else None
        set_enabled(self.std.properties, one is not None)
        set_enabled(
            self.dns_details,
            one is not None and one.hosted,
            "DNS details are for the domains on policies; a connector's address space has "
            "only its route.",
        )
        records = one.dkim.records() if one is not None and one.dkim is not None else ""
        set_enabled(
            self.copy_record,
            bool(records),
            "Select one domain Postroom is responsible for: only those have DKIM keys and a "
            "record to publish.",
        )
        if self.checking:
            set_enabled(self.check_dns, False, CHECK_RUNNING)
        else:
            set_enabled(
                self.check_dns,
                self.list_model.rowCount() > 0,
                "No policy names a domain yet.",
            )

    def node_menu(self) -> list[MenuEntry]:
        return [self.check_dns, None, self.std.refresh, self.std.export_list]

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [
            self.check_dns,
            self.dns_details,
            self.copy_record,
            None,
            self.std.refresh,
            None,
            self.std.properties,
        ]

    def toolbar_actions(self) -> list[QAction]:
        return [self.check_dns]

    def properties(self, rows: list[int]) -> None:
        """Double-click, Enter or Properties: the sheet of the policy that owns the domain, or
        of the (first) connector that names an address space."""
        if len(rows) != 1:
            return
        row = self.list_model.row_object(rows[0])
        if not row.hosted:
            self._connector_properties(row)
            return
        policy = self.owner(row.domain)
        if policy is None:
            return
        PolicyDialog.edit(self.parent_widget, self.console.store, policy)
        self.refresh()

    def _connector_properties(self, row: DomainRow) -> None:
        try:
            connector = get_connector(self.console.store, row.connectors[0])
        except PostroomError as error:
            messages.error(self.parent_widget, error)
        else:
            ConnectorDialog.edit(self.parent_widget, self.console.store, connector)
        self.refresh()

    def _copy_record(self) -> None:
        if len(self._selection) != 1:
            return
        cell = self.list_model.row_object(self._selection[0]).dkim
        if cell is not None and cell.records():
            QGuiApplication.clipboard().setText(cell.records())

    def _show_details(self) -> None:
        if len(self._selection) != 1:
            return
        DomainDnsDialog.show_details(
            self.parent_widget,
            self.list_model,
            self.cache,
            self.start_check,
            self.list_model.row_object(self._selection[0]).domain,
        )

    # -- Check DNS -------------------------------------------------------------------------

    def start_check(self, domains: list[str]) -> bool:
        """Check ``domains`` in the background; False (and a message) when it cannot start.
        ``checked`` is emitted when the results are in."""
        domains = [domain for domain in domains if domain not in self.checking]
        if not domains:
            return False
        try:
            settings = load_settings(self.console.store)
            connectors = list_connectors(self.console.store)
            config = dns_config_from_settings(settings)
        except PostroomError as error:
            messages.error(self.parent_widget, error)
            return False
        shared = [
            domain
            for domain in domains
            if (row := self.row(domain)) is not None
            and row.kind not in ("authoritative", "unused")
            and not domain.startswith(ANY_DOMAIN)
            and settled_route(domain, settings, connectors) is None
        ]
        hosted = [domain for domain in domains if (row := self.row(domain)) and row.hosted]
        domains = hosted + shared
        if not domains:  # only patterns (*, *.example.com): nothing DNS could tell
            return False
        self.checking.update(domains)
        self._show_rows()
        log.info("checking DNS of %s", ", ".join(domains))
        self.console.tasks.submit(
            "check DNS",
            check_domains,
            self.cache,
            hosted,
            shared,
            config,
            settings,
            connectors,
            self.console.store,
            on_success=lambda found: self._check_done(domains, *found),
            on_failure=lambda error: self._check_failed(domains, error),
        )
        return True

    def _check_done(
        self, domains: list[str], routes: dict[str, Route], dkim: list[DomainStatus]
    ) -> None:
        self.routes.update(routes)
        for status in dkim:
            self.dkim_keys[status.domain] = as_keys(status)
            self.dkim_published[status.domain] = {s.key.selector: s.published for s in status.keys}
        self.checking.difference_update(domains)
        self._show_rows()
        self.checked.emit()

    def _check_failed(self, domains: list[str], error: Exception) -> None:
        self.checking.difference_update(domains)
        self._show_rows()
        self.checked.emit()
        if isinstance(error, PostroomError):
            messages.error(self.parent_widget, error)
        else:
            messages.error(self.parent_widget, f"The DNS check failed: {error}")


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")
