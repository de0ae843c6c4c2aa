"""Publishing a store's DKIM records in the loopback DNS responder, as an administrator would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from app.dkim.catalog import prepare_keys
from app.dkim.keys import DkimKey
from app.dns.records import split_txt
from app.store import Store
from tests.dns_responder import DnsResponder


def owner(key: DkimKey) -> dns.name.Name:
    return dns.name.from_text(key.record_name, origin=dns.name.root)


def publish(responder: DnsResponder, name: dns.name.Name, txt: str) -> None:
    """Serve one TXT record ``txt`` at ``name`` (beside any already there)."""
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, split_txt(txt))
    with responder.zone.writer() as txn:
        txn.add(name, 300, rdata)


def withdraw(responder: DnsResponder, name: dns.name.Name) -> None:
    with responder.zone.writer() as txn:
        if txn.name_exists(name):
            txn.delete(name)


@contextlib.contextmanager
def published_dkim(responder: DnsResponder, store: Store) -> Iterator[list[DkimKey]]:
    """Publish the record of every key the store has (making keys first) for a ``with``."""
    keys = [key for entry in prepare_keys(store) for key in entry.keys if key.txt]
    for key in keys:
        publish(responder, owner(key), key.txt)
    try:
        yield keys
    finally:
        for key in keys:
            withdraw(responder, owner(key))
