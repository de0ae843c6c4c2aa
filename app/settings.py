"""Service settings (SMTP, IMAP4, POP3, DNS, console), stored in the database with defaults."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.directory import addressing
from app.errors import PostroomError
from app.store import Store
from app.store import settings as rows

MIB = 1024 * 1024
MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_UNITS = {"d": DAY, "h": HOUR, "m": MINUTE, "s": 1}
_DURATION = re.compile(r"(?:\d+[dhms])+|\d+")
_DURATION_PART = re.compile(r"(\d+)([dhms])")
DURATION_HELP = "write seconds or a number with a unit: 30s, 15m, 2h, 1d (or 1d12h)"


def parse_host_port(
    text: str, default_port: int = 2525, *, any_port: bool = False
) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``HOST`` → (host, port); or a refusal.

    ``any_port`` allows port 0 (a free port chosen when listening).
    """
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        port = -1
    if not host or not (0 if any_port else 1) <= port < 65536:
        raise PostroomError(
            f"'{text}' is not a listen address. Write HOST:PORT, e.g. 127.0.0.1:2525 or [::1]:2525."
        )
    return host, port


def format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    result = [format_host_port(*parse_host_port(str(item))) for item in items if str(item).strip()]
    if not result:
        raise PostroomError("Give at least one listen address, e.g. 127.0.0.1:2525.")
    return result


def _submission_listen(value: Any) -> list[str]:
    """Submission's listen addresses; empty (or ``off``) turns submission off."""
    if not isinstance(value, list) and str(value).strip().lower() in ("", "off"):
        return []
    result = []
    for item in value if isinstance(value, list) else str(value).split(","):
        if not str(item).strip():
            continue
        try:
            result.append(format_host_port(*parse_host_port(str(item), 587)))
        except PostroomError:
            raise PostroomError(
                f"'{str(item).strip()}' is not a listen address. Write HOST:PORT, e.g. "
                "127.0.0.1:2587, or off to turn submission off."
            ) from None
    return result


def _optional_listen(default_port: int, example: str) -> Callable[[Any], list[str]]:
    """Listen addresses that may be empty (``off``): a protocol's plain or TLS listeners."""

    def parse(value: Any) -> list[str]:
        if not isinstance(value, list) and str(value).strip().lower() in ("", "off"):
            return []
        result = []
        for item in value if isinstance(value, list) else str(value).split(","):
            if not str(item).strip():
                continue
            try:
                result.append(format_host_port(*parse_host_port(str(item), default_port)))
            except PostroomError:
                raise PostroomError(
                    f"'{str(item).strip()}' is not a listen address. Write HOST:PORT, e.g. "
                    f"{example}, or off for none."
                ) from None
        return result

    return parse


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise PostroomError(f"'{value}' is not a whole number.") from None
        if not low <= number <= high:
            raise PostroomError(f"{number} is out of range: use {low} to {high}.")
        return number

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise PostroomError(f"'{value}' is not on or off.")


def _text(value: Any) -> str:
    text = str(value).strip()
    if not text.isprintable():
        raise PostroomError("The value has control characters.")
    return text


def _host_name(value: Any) -> str:
    text = _text(value)
    return addressing.normalize_domain(text) if text else ""


def _networks(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    result = []
    for item in items:
        try:
            result.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise PostroomError(
                f"'{item}' is not an IP address or network. Write e.g. 192.0.2.10 or 192.0.2.0/24."
            ) from None
    return result


def _addresses(value: Any) -> list[str]:
    return [net.split("/")[0] for net in _networks(value)]


def _nameservers(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    result = []
    for item in items:
        host, port = parse_host_port(str(item), default_port=53)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise PostroomError(
                f"'{item}' is not a nameserver: give an IP address[:PORT]."
            ) from None
        result.append(format_host_port(host, port))
    return result


def parse_duration(value: Any) -> int:
    """Seconds from ``900``, ``"900"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"30s"`` or ``"1d12h"``;
    a PostroomError for anything else (a fraction, a sign, an unknown unit)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = "".join(str(value).split()).lower()  # "15 m" and "1d 12h" read as typed
    sign = -1 if text.startswith("-") else 1  # parsed, so that the range check can refuse it
    text = text.removeprefix("-")
    if isinstance(value, bool) or not _DURATION.fullmatch(text):
        raise PostroomError(f"'{value}' is not a duration: {DURATION_HELP}.")
    if text.isdigit():
        return sign * int(text)
    parts = _DURATION_PART.findall(text)
    return sign * sum(int(number) * _UNITS[unit] for number, unit in parts)


def format_duration(seconds: int) -> str:
    """The shortest spelling ``parse_duration`` reads back: 900 → ``15m``, 129600 → ``1d12h``."""
    if seconds <= 0:
        return str(seconds)
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def describe_duration(seconds: int) -> str:
    """Words for messages: 43200 → ``12 hours``, 5400 → ``1 hour 30 minutes``."""
    if seconds <= 0:
        return f"{seconds} seconds"  # only ever shown to refuse it
    parts = []
    for name, size in (("day", DAY), ("hour", HOUR), ("minute", MINUTE), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts)


def _duration_between(what: str, low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise PostroomError(
                f"{what} of {describe_duration(seconds)} is refused: use at least "
                f"{describe_duration(low)}."
            )
        if not low <= seconds <= high:
            raise PostroomError(
                f"{what} of {describe_duration(seconds)} is out of range: use "
                f"{describe_duration(low)} to {describe_duration(high)}."
            )
        return seconds

    return parse


RETRY_NAMES = ("first", "second", "third", "subsequent")
_RETRY_PARSERS = [
    _duration_between(f"The {name} retry interval", 1, 30 * DAY) for name in RETRY_NAMES
]


def _retry_intervals(value: Any) -> list[int]:
    if isinstance(value, list):
        items = value
    else:
        text = str(value)
        items = [i for i in text.split(",") if i.strip()] if "," in text else text.split()
    if len(items) != len(RETRY_NAMES):
        raise PostroomError(
            f"Give {len(RETRY_NAMES)} retry intervals (first, second, third, subsequent), "
            f"e.g. 15m,30m,1h,4h; {len(items)} given."
        )
    return [parse(item) for parse, item in zip(_RETRY_PARSERS, items, strict=True)]


def _address_or_empty(value: Any) -> str:
    text = _text(value)
    return addressing.normalize_smtp_address(text) if text else ""


# -- filtering (rspamd) -------------------------------------------------------------------------

FAILURE_ACTIONS = ("tempfail", "accept")


def _score(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PostroomError(f"'{value}' is not a number; write a score such as 6 or 7.5.") from None
    if number != number or not -1000 <= number <= 1000:
        raise PostroomError(f"{value} is out of range: use a score from -1000 to 1000.")
    return number


def _failure_action(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in FAILURE_ACTIONS:
        raise PostroomError(
            f"'{value}' is not a failure action: write tempfail (451, the sender retries) or "
            "accept (delivered, marked unscanned)."
        )
    return text


def _dnsbl_zones(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    result = []
    for item in items:
        text = str(item).strip().rstrip(".")
        try:
            zone = addressing.normalize_domain(text)
        except PostroomError:
            raise PostroomError(
                f"'{item}' is not a DNS block list: give its zone, e.g. zen.spamhaus.org."
            ) from None
        if zone not in result:
            result.append(zone)
    return result


def _blocked_senders(value: Any) -> list[str]:
    """Addresses (user@example.org) and domains (example.org or @example.org), lower case."""
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    result = []
    for item in items:
        text = str(item).strip()
        try:
            if "@" in text.lstrip("@"):
                entry = addressing.normalize_smtp_address(text).lower()
            else:
                entry = addressing.normalize_domain(text.removeprefix("@"))
        except PostroomError:
            raise PostroomError(
                f"'{item}' is not an address or a domain: write user@example.org, "
                "example.org or @example.org."
            ) from None
        if entry not in result:
            result.append(entry)
    return result


def _setting(
    default: Any,
    parse: Callable[[Any], Any],
    help_text: str,
    show: Callable[[Any], str] | None = None,
) -> Any:
    factory = (lambda: list(default)) if isinstance(default, list) else (lambda: default)
    metadata: dict[str, Any] = {"parse": parse, "help": help_text}
    if show is not None:
        metadata["show"] = show
    return field(default_factory=factory, metadata=metadata)


def _durations_shown(value: Any) -> str:
    return ",".join(format_duration(item) for item in value)


@dataclass(frozen=True)
class Settings:
    """Every setting with its value; keys are the field names (``postroom smtp set KEY VALUE``)."""

    listen: list[str] = _setting(["127.0.0.1:2525"], _listen, "Listen addresses (HOST:PORT,...)")
    submission_listen: list[str] = _setting(
        ["127.0.0.1:2587"], _submission_listen, "Submission (STARTTLS+AUTH) addresses; empty: off"
    )
    fqdn: str = _setting(
        "", _host_name, "Host name in the banner and Received (default: machine's)"
    )
    banner: str = _setting("Postroom ESMTP", _text, "Text after the host name in the greeting")
    autostart: bool = _setting(True, _bool, "The console starts the SMTP service when it opens")
    max_message_size: int = _setting(25 * MIB, _int_between(1024, 2**31 - 1), "Bytes (SIZE)")
    max_recipients: int = _setting(500, _int_between(100, 100_000), "Recipients per message")
    max_received: int = _setting(30, _int_between(5, 500), "Received headers before a loop")
    max_line_length: int = _setting(998, _int_between(78, 100_000), "Octets per line in DATA")
    max_connections: int = _setting(100, _int_between(1, 100_000), "Simultaneous connections")
    idle_timeout: int = _setting(300, _int_between(5, 86_400), "Seconds a silent session lasts")
    max_bad_commands: int = _setting(10, _int_between(1, 1000), "Bad commands before hang-up")
    max_bad_recipients: int = _setting(20, _int_between(1, 10_000), "Refused RCPTs before hang-up")
    relay_ips: list[str] = _setting([], _networks, "Computers that may relay (IPs or networks)")
    auth_relay: bool = _setting(True, _bool, "Authenticated clients may relay")
    tls_cert: str = _setting("", _text, "PEM certificate file (empty: self-signed on first use)")
    tls_key: str = _setting("", _text, "PEM private key file for tls_cert")
    postmaster: str = _setting("", _text, "Alias that receives postmaster mail")
    smart_host: str = _setting("", _text, "Send outbound mail through this host (empty: DNS)")
    public_name: str = _setting("", _host_name, "This server's public host name (the MX target)")
    public_addresses: list[str] = _setting([], _addresses, "This server's public IP addresses")
    nameservers: list[str] = _setting([], _nameservers, "DNS servers (IP[:PORT]; empty: system)")
    dns_timeout: int = _setting(5, _int_between(1, 60), "Seconds per DNS query")
    retry_intervals: list[int] = _setting(
        [15 * MINUTE, 30 * MINUTE, HOUR, 4 * HOUR],
        _retry_intervals,
        "Outbound retries: first, second, third, subsequent (e.g. 15m,30m,1h,4h)",
        _durations_shown,
    )
    delay_notification: int = _setting(
        12 * HOUR,
        _duration_between("A delay notification", 1, 30 * DAY),
        "Warn the sender when a message waits this long (e.g. 12h)",
        format_duration,
    )
    expiration_timeout: int = _setting(
        2 * DAY,
        _duration_between("An expiration timeout", 1, 30 * DAY),
        "Return a message not delivered within this (longer than delay_notification)",
        format_duration,
    )
    outbound_connections: int = _setting(
        1000, _int_between(1, 100_000), "Simultaneous outbound connections"
    )
    outbound_connections_per_domain: int = _setting(
        100, _int_between(1, 100_000), "Outbound connections per domain (at most the limit)"
    )
    outbound_timeout: int = _setting(
        10 * MINUTE,
        _duration_between("An outbound time-out", 1, DAY),
        "Idle time-out of an outbound connection (e.g. 10m)",
        format_duration,
    )
    outbound_port: int = _setting(25, _int_between(1, 65_535), "TCP port of DNS-routed delivery")
    ndr_copy_to: str = _setting("", _address_or_empty, "Address sent a copy of every NDR")
    # IMAP4 and POP3 are served by Dovecot under Postroom's control (app/dovecot).
    imap_enabled: bool = _setting(
        True, _bool, "Dovecot serves IMAP4 (Default IMAP4 Virtual Server)"
    )
    imap_listen: list[str] = _setting(
        ["127.0.0.1:1143"], _optional_listen(143, "127.0.0.1:1143"), "IMAP4 addresses (STARTTLS)"
    )
    imaps_listen: list[str] = _setting(
        [], _optional_listen(993, "0.0.0.0:993"), "IMAP4 over TLS addresses; empty: none"
    )
    imap_tls_required: bool = _setting(False, _bool, "IMAP4 logins need TLS (not on loopback)")
    pop3_enabled: bool = _setting(True, _bool, "Dovecot serves POP3 (Default POP3 Virtual Server)")
    pop3_listen: list[str] = _setting(
        ["127.0.0.1:1110"], _optional_listen(110, "127.0.0.1:1110"), "POP3 addresses (STLS)"
    )
    pop3s_listen: list[str] = _setting(
        [], _optional_listen(995, "0.0.0.0:995"), "POP3 over TLS addresses; empty: none"
    )
    pop3_tls_required: bool = _setting(False, _bool, "POP3 logins need TLS (not on loopback)")
    mailbox_warn_default: int = _setting(
        0, _int_between(0, 2**32), "Mailbox Store: issue warning at (KiB; 0: no limit)"
    )
    mailbox_prohibit_default: int = _setting(
        0, _int_between(0, 2**32), "Mailbox Store: prohibit send and receive at (KiB; 0: none)"
    )
    mailbox_full_permanent: bool = _setting(
        False, _bool, "Mail to a full mailbox: 552 5.2.2 (on, final) or 452 4.2.2 (off, retried)"
    )
    # Filtering: rspamd run by Postroom scans mail arriving on SMTP (app/filtering).
    filtering: bool = _setting(False, _bool, "Scan incoming mail with rspamd (on/off)")
    filter_reject_score: float = _setting(15.0, _score, "Refuse mail scoring this (550 5.7.1)")
    filter_junk_score: float = _setting(6.0, _score, "File mail scoring this in Junk")
    filter_failure_action: str = _setting(
        "tempfail", _failure_action, "When rspamd does not answer: tempfail (451) or accept"
    )
    filter_timeout: int = _setting(20, _int_between(1, 600), "Seconds to wait for rspamd")
    filter_max_size: int = _setting(
        20 * MIB, _int_between(1024, 2**31 - 1), "Bytes; larger mail is not scanned (marked)"
    )
    filter_dnsbl: list[str] = _setting([], _dnsbl_zones, "DNS block lists (zones; empty: none)")
    blocked_senders: list[str] = _setting(
        [], _blocked_senders, "Senders refused at MAIL FROM (addresses or domains)"
    )
    dmarc_reject: bool = _setting(True, _bool, "Refuse mail failing DMARC with p=reject")
    rspamd_port: int = _setting(0, _int_between(0, 65_535), "rspamd's loopback port (0: free)")
    rspamd_binary: str = _setting("rspamd", _text, "The rspamd program (name or path)")

    @property
    def host_name(self) -> str:
        """The name the SMTP service greets with."""
        return self.fqdn or socket.getfqdn()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SETTING_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def load_settings(store: Store) -> Settings:
    """The stored settings, defaults filling what was never set (unknown keys are ignored)."""
    with store.read() as conn:
        stored = rows.load_settings(conn)
    return Settings(**_parsed(stored))


def _parsed(stored: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in stored.items():
        if key in SETTING_FIELDS:
            try:
                values[key] = SETTING_FIELDS[key].metadata["parse"](value)
            except PostroomError:
                continue  # a value a newer version wrote: keep the default
    return values


def parse_setting(key: str, value: Any) -> Any:
    """The checked value for ``key``, or a PostroomError saying what is wrong."""
    spec = SETTING_FIELDS.get(key)
    if spec is None:
        raise PostroomError(
            f"'{key}' is not a setting. The settings are: {', '.join(SETTING_FIELDS)}."
        )
    try:
        return spec.metadata["parse"](value)
    except PostroomError as error:
        raise PostroomError(f"{key}: {error}") from None


def check_settings(settings: Settings) -> None:
    """Refuse settings whose values disagree with each other (one line naming both)."""
    if settings.expiration_timeout <= settings.delay_notification:
        raise PostroomError(
            f"The expiration timeout ({describe_duration(settings.expiration_timeout)}) must be "
            f"longer than the delay notification ({describe_duration(settings.delay_notification)})"
            ": lengthen expiration_timeout or shorten delay_notification."
        )
    if settings.filter_reject_score < settings.filter_junk_score:
        raise PostroomError(
            f"The reject score ({settings.filter_reject_score:g}) may not be below the Junk "
            f"score ({settings.filter_junk_score:g}): raise filter_reject_score or lower "
            "filter_junk_score."
        )
    if settings.outbound_connections_per_domain > settings.outbound_connections:
        raise PostroomError(
            f"The outbound connections per domain ({settings.outbound_connections_per_domain}) "
            f"may not exceed the outbound connection limit ({settings.outbound_connections}): "
            "lower outbound_connections_per_domain or raise outbound_connections."
        )
    for name in ("imap", "pop3"):
        if getattr(settings, f"{name}_enabled") and not (
            getattr(settings, f"{name}_listen") or getattr(settings, f"{name}s_listen")
        ):
            raise PostroomError(
                f"{name.upper()} is on but has no listen address: set {name}_listen (or "
                f"{name}s_listen), or turn it off with {name}_enabled off."
            )
    warn, prohibit = settings.mailbox_warn_default, settings.mailbox_prohibit_default
    if warn and prohibit and warn > prohibit:
        raise PostroomError(
            f"The default warning limit ({warn} KiB) is above the default prohibit limit "
            f"({prohibit} KiB): lower mailbox_warn_default or raise mailbox_prohibit_default."
        )


def save_settings(store: Store, **changes: Any) -> Settings:
    """Check and store several settings in one transaction; nothing is stored if the result,
    merged with what is stored, breaks a rule between settings."""
    checked = {key: parse_setting(key, value) for key, value in changes.items()}
    with store.write() as conn:
        current = _parsed(rows.load_settings(conn))
        check_settings(Settings(**{**current, **checked}))
        for key, value in checked.items():
            rows.save_setting(conn, key, value)
    return load_settings(store)
