"""A new organisation: its name and the Default Policy with the first mail domain."""

from __future__ import annotations

import logging
import socket

from app.directory import addressing
from app.errors import PostroomError
from app.model import Organization, now
from app.policies.catalog import create_default_policy
from app.store import Store
from app.store import policies as rows

log = logging.getLogger(__name__)

FALLBACK_DOMAIN = "example.com"
DEFAULT_ORGANIZATION_NAME = "First Organization"


def default_domain() -> str:
    """The machine's DNS domain when it has one that is a valid mail domain, else example.com."""
    fqdn = socket.getfqdn()
    _, _, domain = fqdn.partition(".")
    if domain and not domain.endswith((".localdomain", ".local", ".internal", ".arpa")):
        try:
            return addressing.normalize_domain(domain)
        except PostroomError:
            pass
    return FALLBACK_DOMAIN


def get_organization(store: Store) -> Organization | None:
    """The organisation, or None while the data directory has not been set up."""
    with store.read() as conn:
        return rows.load_organization(conn)


def initialize(
    store: Store, name: str = DEFAULT_ORGANIZATION_NAME, domain: str | None = None
) -> Organization:
    """Create the organisation and its Default Policy (``@<domain>``) unless they exist."""
    name = name.strip()
    if not name:
        raise PostroomError("The organization name is empty. Type a name, e.g. your company's.")
    domain = addressing.normalize_domain(domain if domain is not None else default_domain())
    with store.write() as conn:
        existing = rows.load_organization(conn)
        if existing is not None:
            return existing
        stamp = now()
        rows.insert_organization(conn, name, stamp)
        create_default_policy(conn, domain)
    log.info("created organization %s with domain %s", name, domain)
    return Organization(name, stamp)
