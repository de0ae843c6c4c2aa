"""A real DNS server for tests: serves one zone on a free loopback port over UDP and TCP."""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import struct
import threading
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05


class Mode(enum.Enum):
    """How the responder treats every query."""

    ANSWER = "answer"  # answer from the zone
    SILENT = "silent"  # never answer (the client times out)
    SERVFAIL = "servfail"
    REFUSED = "refused"


class DnsResponder:
    """Serves ``zone_text`` (absolute names) authoritatively on 127.0.0.1 from two threads.

    A name in the zone without the asked type gets NOERROR with no records; a name that is not
    in the zone (and has nothing below it) gets NXDOMAIN; CNAMEs are followed inside the zone.
    """

    def __init__(self, zone_text: str) -> None:
        self.zone = dns.zone.from_text(
            zone_text, origin=dns.name.root, relativize=False, check_origin=False
        )
        self.mode = Mode.ANSWER
        self.host = "127.0.0.1"
        self.port = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to give a resolver."""
        return self.host, self.port

    def start(self) -> None:
        """Bind UDP and TCP on one free port and serve until ``stop``."""
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind((self.host, udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        else:
            raise RuntimeError("no free port for UDP and TCP together")
        tcp.listen()
        udp.settimeout(_POLL_SECONDS)
        tcp.settimeout(_POLL_SECONDS)
        self._udp, self._tcp = udp, tcp
        self.port = udp.getsockname()[1]
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, name=f"dns-responder-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop serving and wait for both threads to end."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            try:
                wire, peer = self._udp.recvfrom(65535)
            except TimeoutError:
                continue
            reply = self.reply(wire, max_size=512)
            if reply is not None:
                self._udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while not self._stop.is_set():
            try:
                connection, _ = self._tcp.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1.0)
                try:
                    while True:
                        (length,) = struct.unpack("!H", _read(connection, 2))
                        reply = self.reply(_read(connection, length), max_size=65535)
                        if reply is None:
                            break
                        connection.sendall(struct.pack("!H", len(reply)) + reply)
                except (EOFError, OSError):
                    pass

    def reply(self, wire: bytes, max_size: int) -> bytes | None:
        """The wire reply to one query, or None to stay silent."""
        if self.mode is Mode.SILENT:
            return None
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        if self.mode is Mode.SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif self.mode is Mode.REFUSED:
            response.set_rcode(dns.rcode.REFUSED)
        else:
            self._fill(query, response)
        if query.edns >= 0:
            max_size = max(max_size, query.payload)
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            response.answer = []
            response.flags |= dns.flags.TC
            return response.to_wire()

    def _fill(self, query: dns.message.Message, response: dns.message.Message) -> None:
        question = query.question[0]
        name = question.name
        for _ in range(8):  # follow CNAMEs inside the zone, as an authoritative server does
            node = self.zone.get_node(name)
            if node is None:
                if not any(known.is_subdomain(name) for known in self.zone.nodes):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return
            found = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
            if found is not None:
                response.answer.append(dns.rrset.from_rdata_list(name, found.ttl, list(found)))
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None or question.rdtype == dns.rdatatype.CNAME:
                return
            response.answer.append(dns.rrset.from_rdata_list(name, cname.ttl, list(cname)))
            name = cname[0].target


def _read(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


@contextlib.contextmanager
def serving(zone_text: str, mode: Mode = Mode.ANSWER) -> Iterator[DnsResponder]:
    """A responder for ``zone_text`` on loopback for the length of a ``with`` (or a fixture)."""
    server = DnsResponder(zone_text)
    server.mode = mode
    server.start()
    try:
        yield server
    finally:
        server.stop()
