"""Recipient-policy address templates, address and domain validation, collision suffixes."""

from __future__ import annotations

import ipaddress
import logging
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import idna

from app.errors import PostroomError

log = logging.getLogger(__name__)

MAX_LOCAL_PART = 64
MAX_DOMAIN = 253
MAX_LABEL = 63
# RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
MAX_ADDRESS = 254
# A guard against a caller whose is_taken() never says "free"; no real directory gets near it.
MAX_SUFFIX = 999_999
# Longer input is quoted in messages only by its start, so a message stays readable.
_QUOTE_LIMIT = 100

# RFC 5322 atext: the characters a dot-atom is built from, besides the dots between atoms.
ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_ATOM = "[" + re.escape("".join(sorted(ATEXT))) + "]+"
_DOT_ATOM_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")

FIELDS = {"g": "given", "s": "surname", "i": "initials", "d": "display", "m": "alias"}
_TOKEN_HELP = (
    "use %g (given name), %s (surname), %i (initials), %d (display name), %m (alias), "
    "%Nx for the first N characters of one of these (e.g. %1g), "
    "%rxy to replace x with y in the tokens that follow (e.g. %r._), or %% for a literal %"
)
_ATEXT_HELP = "letters, digits, dots and !#$%&'*+-/=?^_`{|}~"

# Letters whose usual spelling is not what stripping the accent would give, or that Unicode
# does not decompose at all (ø, æ, ß, ł ...); everything else loses its accent via NFKD.
_TRANSLITERATION = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "Ä": "Ae",
        "Ö": "Oe",
        "Ü": "Ue",
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "Ae",
        "ø": "o",
        "Ø": "O",
        "å": "a",
        "Å": "A",
        "œ": "oe",
        "Œ": "Oe",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "ı": "i",
    }
)


class AddressError(PostroomError):
    """An address, address template or domain was refused; the message says why and what to do."""


def _quote(text: str) -> str:
    """Return text in quotes for a message: escaped if it does not print, shortened if long."""
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 1] + "…"
    return f"'{text}'" if text.isprintable() else repr(text)


def _char_name(char: str) -> str:
    """Return a readable description of one character for a message."""
    if char == " ":
        return "a space"
    if char.isprintable():
        return f"'{char}'"
    return f"the character U+{ord(char):04X}"


# --- domains -------------------------------------------------------------------------------


def normalize_domain(text: str) -> str:
    """Return the domain as a lower-case A-label host name, or raise AddressError saying why not.

    Accepts Unicode (IDNA 2008 with UTS #46 mapping) and one trailing dot. Refuses empty input,
    wildcards, IP addresses and literals, single-label names and anything that is not a valid
    host name.
    """
    raw = text.strip()
    if not raw:
        raise AddressError("The domain is empty; enter a domain name such as example.com.")
    if "*" in raw:
        raise AddressError(
            f"The domain {_quote(raw)} contains '*': wildcards are not supported by Postroom; "
            "list each domain on its own rule."
        )
    if raw.startswith("[") or raw.endswith("]"):
        raise AddressError(
            f"The domain {_quote(raw)} is an IP address literal; Postroom hosts mail only for "
            "domain names: enter a domain name such as example.com."
        )
    if len(raw) > 4 * MAX_DOMAIN:
        # Far beyond any mapping that could shrink it to a valid name; say so plainly.
        raise AddressError(
            f"The domain {_quote(raw)} is {len(raw)} characters long; a domain name may have "
            f"at most {MAX_DOMAIN}. Use a shorter name."
        )
    try:
        mapped = idna.uts46_remap(raw, std3_rules=False)
    except ValueError as err:
        raise AddressError(
            f"The domain {_quote(raw)} is not a valid internationalized domain name ({err}); "
            "correct the name."
        ) from err
    if "*" in mapped:
        raise AddressError(
            f"The domain {_quote(raw)} contains '*': wildcards are not supported by Postroom; "
            "list each domain on its own rule."
        )
    name = mapped[:-1] if mapped.endswith(".") else mapped
    if not name:
        raise AddressError("The domain is empty; enter a domain name such as example.com.")
    if _is_ip_address(name):
        raise AddressError(
            f"The domain {_quote(raw)} is an IP address; Postroom hosts mail only for domain "
            "names: enter a domain name such as example.com."
        )
    labels = name.split(".")
    if "" in labels:
        raise AddressError(
            f"The domain {_quote(raw)} has an empty label (two dots in a row, or a dot at the "
            "start); remove the extra dot."
        )
    if len(labels) < 2:
        raise AddressError(
            f"The domain {_quote(raw)} has no dot; a mail domain needs at least two labels "
            "separated by a dot, e.g. example.com."
        )
    a_labels = [_label_to_ascii(label, raw) for label in labels]
    result = ".".join(a_labels)
    if len(result) > MAX_DOMAIN:
        raise AddressError(
            f"The domain {_quote(raw)} is {len(result)} characters long in DNS form; a domain "
            f"name may have at most {MAX_DOMAIN}. Use a shorter name."
        )
    return result


def _is_ip_address(name: str) -> bool:
    """Tell whether name is an IPv4/IPv6 address or ends in an all-numeric label like one."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.rsplit(".", 1)[-1].isdigit()
    return True


def _label_to_ascii(label: str, domain: str) -> str:
    """Return one mapped label as its A-label, or raise AddressError naming what is wrong."""
    for char in label:
        if char.isascii() and char not in _LDH:
            raise AddressError(
                f"The domain {_quote(domain)} contains {_char_name(char)}; a host name "
                "uses only letters, digits, hyphens and dots."
            )
    if label.isascii():
        ascii_label = label
    else:
        try:
            ascii_label = "xn--" + label.encode("punycode").decode("ascii")
        except UnicodeError as err:
            raise AddressError(
                f"The domain {_quote(domain)} is not a valid internationalized domain name "
                f"({err}); correct the name."
            ) from err
    if len(ascii_label) > MAX_LABEL:
        raise AddressError(
            f"The label {_quote(label)} of the domain {_quote(domain)} is {len(ascii_label)} "
            f"characters long in DNS form; a label may have at most {MAX_LABEL}. "
            "Use a shorter name."
        )
    if ascii_label.startswith("-") or ascii_label.endswith("-"):
        raise AddressError(
            f"The label {_quote(label)} of the domain {_quote(domain)} starts or ends with a "
            "hyphen; host name labels may not. Remove the hyphen."
        )
    try:
        # Validates U-labels and xn-- A-labels alike under IDNA 2008 (code points, context
        # rules, bidi, hyphens in positions 3 and 4, canonical Punycode).
        return idna.alabel(label).decode("ascii")
    except ValueError as err:
        raise AddressError(
            f"The domain {_quote(domain)} is not a valid internationalized domain name: "
            f"the label {_quote(label)} is refused by IDNA 2008 ({err}). Correct the name."
        ) from err


def display_domain(a_label: str) -> str:
    """Return the domain with U-labels for display, or unchanged if it cannot be decoded."""
    try:
        return idna.decode(a_label)
    except ValueError:
        return a_label


# --- templates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressTemplate:
    """A generation rule's address: a local-part template ('' means %m) and an A-label domain."""

    local_template: str
    domain: str

    def __str__(self) -> str:
        """Return the template as stored and shown: ``<local_template>@<domain>``."""
        return f"{self.local_template}@{self.domain}"


@dataclass(frozen=True)
class NameValues:
    """The recipient attributes the template tokens draw on, as stored in the directory."""

    alias: str
    given: str = ""
    surname: str = ""
    initials: str = ""
    display: str = ""


@dataclass(frozen=True)
class _Literal:
    text: str


@dataclass(frozen=True)
class _Field:
    key: str
    limit: int | None


@dataclass(frozen=True)
class _Replace:
    old: str
    new: str


_Token = _Literal | _Field | _Replace


def _tokenize(local_template: str) -> list[_Token]:
    """Split a local-part template into tokens, or raise AddressError naming the bad part."""
    if "@" in local_template:
        raise AddressError(
            f"The local-part template {_quote(local_template)} contains '@'; a template has "
            "exactly one '@', between the local part and the domain."
        )
    tokens: list[_Token] = []
    literal: list[str] = []
    pos = 0
    end = len(local_template)

    def flush() -> None:
        if literal:
            tokens.append(_Literal("".join(literal)))
            literal.clear()

    while pos < end:
        char = local_template[pos]
        if char != "%":
            if char not in ATEXT and char != ".":
                raise AddressError(
                    f"The local-part template {_quote(local_template)} contains "
                    f"{_char_name(char)}, which an e-mail address cannot hold; literal text may "
                    f"use only {_ATEXT_HELP}."
                )
            literal.append(char)
            pos += 1
            continue
        if pos + 1 == end:
            raise AddressError(
                f"The local-part template {_quote(local_template)} ends with a lone '%'; write "
                "%% for a literal % or complete the token, e.g. %g."
            )
        code = local_template[pos + 1]
        if code == "%":
            literal.append("%")
            pos += 2
        elif code == "r":
            if pos + 4 > end:
                raise AddressError(
                    f"In {_quote(local_template)}: %r needs two characters after it, e.g. %r._ "
                    "(replace '.' with '_' in the tokens that follow)."
                )
            flush()
            tokens.append(_Replace(local_template[pos + 2], local_template[pos + 3]))
            pos += 4
        elif code in FIELDS:
            flush()
            tokens.append(_Field(code, None))
            pos += 2
        elif code.isascii() and code.isdigit():
            digits_end = pos + 1
            while (
                digits_end < end and digits_end - pos <= 2 and local_template[digits_end].isdigit()
            ):
                digits_end += 1
            digits = local_template[pos + 1 : digits_end]
            key = local_template[digits_end] if digits_end < end else ""
            if key not in FIELDS:
                shown = local_template[pos : digits_end + 1]
                raise AddressError(
                    f"{_quote(shown)} in {_quote(local_template)} is not a template token: "
                    "%N (one or two digits) must be followed by one of g s i d m, e.g. %1g."
                )
            if int(digits) == 0:
                raise AddressError(
                    f"'%{digits}{key}' in {_quote(local_template)} takes no characters; "
                    "N in %Nx is 1 to 99, e.g. %1g."
                )
            flush()
            tokens.append(_Field(key, int(digits)))
            pos = digits_end + 1
        else:
            shown = "%" + code
            hint = ""
            if code.lower() in FIELDS or code.lower() == "r":
                hint = f" Tokens are lower case: did you mean %{code.lower()}?"
            raise AddressError(
                f"{_quote(shown)} in {_quote(local_template)} is not a template token; "
                f"{_TOKEN_HELP}.{hint}"
            )
    flush()
    return tokens


def parse_template(text: str) -> AddressTemplate:
    """Parse ``[local-part-template]@domain`` into an AddressTemplate, or raise AddressError."""
    stripped = text.strip()
    if "@" not in stripped:
        raise AddressError(
            f"The address {_quote(stripped)} has no '@'; write [local-part-template]@domain, "
            "e.g. %g.%s@example.com, or @example.com for the alias."
        )
    local_template, _, domain_text = stripped.rpartition("@")
    tokens = _tokenize(local_template)
    if not domain_text.strip():
        raise AddressError(
            f"The address {_quote(stripped)} has no domain after '@'; add one, e.g. @example.com."
        )
    if not any(isinstance(token, _Field) for token in tokens):
        fixed = "".join(token.text for token in tokens if isinstance(token, _Literal))
        if len(fixed) > MAX_LOCAL_PART:
            raise AddressError(
                f"The local part {_quote(fixed)} is {len(fixed)} octets; the limit is "
                f"{MAX_LOCAL_PART}. Shorten it."
            )
        if fixed and not _DOT_ATOM_RE.fullmatch(fixed):
            raise AddressError(
                f"The local part {_quote(fixed)} has a dot at the start or end or two dots in a "
                "row; remove the extra dot."
            )
    return AddressTemplate(local_template, normalize_domain(domain_text))


def _clean(value: str, keep_dots: bool = False) -> str:
    """Transliterate a token value to ASCII and keep only the characters of an atom.

    The alias (``%m``) keeps its dots: it is a valid dot-atom already, and Exchange stamps
    ``john.smith@domain`` for the alias john.smith.
    """
    value = unicodedata.normalize("NFC", value).translate(_TRANSLITERATION)
    value = unicodedata.normalize("NFKD", value)
    return "".join(char for char in value if char in ATEXT or (keep_dots and char == "."))


def _to_dot_atom(text: str) -> str:
    """Collapse repeated dots and strip dots at either end."""
    return re.sub(r"\.{2,}", ".", text).strip(".")


def generate_local_part(template: AddressTemplate, values: NameValues) -> str:
    """Return the local part the template generates for these values (DESIGN §4).

    Tokens expand left to right. For each value token: ``%Nx`` first takes the first N
    characters of the value as stored; then every ``%rxy`` met so far is applied in order
    (replace x with y, or delete x when x == y); then the value is cleaned: ä→ae, ö→oe, ü→ue,
    ß→ss (and a few letters like ø, æ, å, ł), other accents stripped, and everything that is
    not RFC 5322 atext dropped -- spaces, ``"(),:;<>@[\\]``, control characters, non-ASCII
    leftovers and ``.`` (except in the alias); ``'`` and ``-`` stay. So ``%r._%d`` on
    "Mark M. Clark" gives
    "Mark M_ Clark", cleaned to "MarkM_Clark". Literal text and ``%%`` are kept as written.
    The whole is then made a dot-atom (repeated dots collapse, end dots go); if nothing is
    left, the cleaned alias is used. Case is kept; the result is cut to 64 octets.

    Raises AddressError if the template is invalid or even the alias cleans away to nothing.
    """
    tokens = _tokenize(template.local_template) or [_Field("m", None)]
    replacements: list[tuple[str, str]] = []
    parts: list[str] = []
    for token in tokens:
        if isinstance(token, _Literal):
            parts.append(token.text)
        elif isinstance(token, _Replace):
            replacements.append((token.old, token.new))
        else:
            value: str = getattr(values, FIELDS[token.key])
            if token.limit is not None:
                value = value[: token.limit]
            for old, new in replacements:
                value = value.replace(old, "" if old == new else new)
            parts.append(_clean(value, keep_dots=token.key == "m"))
    local = _to_dot_atom("".join(parts))
    if not local:
        local = _to_dot_atom(_clean(values.alias, keep_dots=True))
    if not local:
        raise AddressError(
            f"No address can be generated for the alias {_quote(values.alias)} with the "
            f"template {_quote(str(template))}: nothing usable is left after dropping the "
            "characters an address cannot hold. Give the recipient an alias of ASCII letters "
            "and digits."
        )
    return local[:MAX_LOCAL_PART].rstrip(".")


def generate_address(template: AddressTemplate, values: NameValues) -> str:
    """Return the address ``local@domain`` the template generates for these values."""
    return f"{generate_local_part(template, values)}@{template.domain}"


# --- concrete addresses --------------------------------------------------------------------


def split_address(address: str) -> tuple[str, str]:
    """Return (local part, domain) of an address, split at its last '@'."""
    local, at, domain = address.rpartition("@")
    if not at:
        raise AddressError(f"The address {_quote(address)} has no '@'.")
    return local, domain


def with_suffix(address: str, n: int) -> str:
    """Return the address with n appended to its local part (0: unchanged), within 64 octets."""
    if n < 0:
        raise ValueError(f"collision suffix must not be negative, got {n}")
    if n == 0:
        return address
    local, domain = split_address(address)
    suffix = str(n)
    return f"{local[: MAX_LOCAL_PART - len(suffix)]}{suffix}@{domain}"


def first_free(address: str, is_taken: Callable[[str], bool]) -> tuple[str, int]:
    """Return the first free address and its suffix: 0 for the plain address, else 2, 3, ...

    ``is_taken`` decides whether an address is in use; it should compare ignoring case.
    """
    if not is_taken(address):
        return address, 0
    for n in range(2, MAX_SUFFIX + 1):
        candidate = with_suffix(address, n)
        if not is_taken(candidate):
            return candidate, n
    raise AddressError(
        f"No free address is left for {_quote(address)}: suffixes 2 to {MAX_SUFFIX} are all "
        "taken. Change the policy's address template."
    )


def normalize_smtp_address(text: str) -> str:
    """Return a typed SMTP address as ``local@a-label-domain``, or raise AddressError saying why.

    The local part must be an ASCII dot-atom of 1 to 64 octets; quoted local parts are refused.
    """
    address = text.strip()
    if not address:
        raise AddressError("The address is empty; enter an address such as jsmith@example.com.")
    if '"' in address:
        raise AddressError(
            f"The address {_quote(address)} has a quoted local part; Postroom does not support "
            f"quoted local parts. Use only {_ATEXT_HELP} before the '@'."
        )
    count = address.count("@")
    if count == 0:
        raise AddressError(
            f"The address {_quote(address)} has no '@'; enter it as local-part@domain, "
            "e.g. jsmith@example.com."
        )
    if count > 1:
        raise AddressError(
            f"The address {_quote(address)} contains {count} '@' characters; an address has "
            "exactly one, between the local part and the domain."
        )
    local, domain = split_address(address)
    if not local:
        raise AddressError(
            f"The address {_quote(address)} has nothing before the '@'; enter a local part, "
            "e.g. jsmith@example.com."
        )
    if not domain.strip():
        raise AddressError(
            f"The address {_quote(address)} has nothing after the '@'; enter a domain, "
            "e.g. jsmith@example.com."
        )
    for char in local:
        if char not in ATEXT and char != ".":
            if not char.isascii():
                reason = "only ASCII characters are supported in the local part"
            else:
                reason = "an unquoted local part cannot hold it"
            raise AddressError(
                f"The address {_quote(address)} contains {_char_name(char)} before the '@'; "
                f"{reason}. Use only {_ATEXT_HELP}."
            )
    if not _DOT_ATOM_RE.fullmatch(local):
        raise AddressError(
            f"The local part {_quote(local)} has a dot at the start or end or two dots in a "
            "row; remove the extra dot."
        )
    if len(local) > MAX_LOCAL_PART:
        raise AddressError(
            f"The local part {_quote(local)} is {len(local)} octets; the limit is "
            f"{MAX_LOCAL_PART}. Shorten it."
        )
    result = f"{local}@{normalize_domain(domain)}"
    if len(result) > MAX_ADDRESS:
        raise AddressError(
            f"The address {_quote(address)} is {len(result)} octets long; an address may have "
            f"at most {MAX_ADDRESS}. Use a shorter local part or domain."
        )
    return result
