"""SMTP connectors (Routing Groups > First Routing Group > Connectors): what they may hold, stored.

- ``checks``: one address space (``parse_address_space``, ``make_address_space``), one smart host
  (``parse_smart_host``, ``make_smart_host``), a whole connector (``check_connector``).
- ``catalog``: the stored connectors: list, read, create, save, delete.

Which connector carries mail for a domain is chosen in ``app.dns.routes`` (``next_hop``).
"""

from app.connectors.catalog import (
    create_connector,
    delete_connector,
    get_connector,
    list_connectors,
    save_connector,
)
from app.connectors.checks import (
    CONNECTORS_PLACE,
    MAX_COST,
    MAX_NAME_LENGTH,
    MIN_COST,
    check_connector,
    display_pattern,
    make_address_space,
    make_smart_host,
    normal_pattern,
    parse_address_space,
    parse_smart_host,
)

__all__ = [
    "CONNECTORS_PLACE",
    "MAX_COST",
    "MAX_NAME_LENGTH",
    "MIN_COST",
    "check_connector",
    "create_connector",
    "delete_connector",
    "display_pattern",
    "get_connector",
    "list_connectors",
    "make_address_space",
    "make_smart_host",
    "normal_pattern",
    "parse_address_space",
    "parse_smart_host",
    "save_connector",
]
