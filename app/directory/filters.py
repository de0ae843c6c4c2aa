"""RFC 4515 LDAP search filters, parsed and evaluated against a recipient's attributes.

The PyPI package ldap-filter 1.0.1 was tried and refused: it looks attribute names up
case-sensitively, does not re-escape values in str() (so \\2a comes back as a wildcard), and
accepts malformed escapes and unescaped '(' while rejecting (&); this small parser is used instead.
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

from app.errors import PostroomError

log = logging.getLogger(__name__)

Attributes = Mapping[str, str | Sequence[str] | None]
_Normalised = dict[str, tuple[str, ...]]

MAX_DEPTH = 64
"""Most levels of nested parentheses a filter may have; deeper ones are refused."""

_WS = " \t\r\n"
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGIT = frozenset("0123456789")
_KEYCHAR = _ALPHA | _DIGIT | {"-"}
_HEX = frozenset("0123456789abcdefABCDEF")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ESCAPE_ADVICE = "Write \\2a for a literal '*', \\28 for '(', \\29 for ')' and \\5c for '\\'."


class FilterError(PostroomError):
    """A malformed filter; the message says what is wrong and at which character (1-based)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


class LdapFilter(abc.ABC):
    """A parsed filter. ``str()`` gives canonical RFC 4515 text that parses back to an equal one.

    Evaluation is two-valued: a comparison on a missing or empty attribute is false, so
    ``(!(department=Sales))`` matches a recipient with no department (RFC 4511 would say
    "undefined" there, and a NOT of undefined matches nobody).
    """

    def matches(self, attributes: Attributes) -> bool:
        """Whether a recipient with these attributes (names in any case) satisfies the filter."""
        return self._match(_normalise(attributes))

    @abc.abstractmethod
    def _match(self, attributes: _Normalised) -> bool: ...

    @abc.abstractmethod
    def __str__(self) -> str: ...


@dataclass(frozen=True)
class And(LdapFilter):
    """``(&...)``: every filter matches; ``(&)`` matches everyone (RFC 4526)."""

    filters: tuple[LdapFilter, ...]

    def _match(self, attributes: _Normalised) -> bool:
        return all(f._match(attributes) for f in self.filters)

    def __str__(self) -> str:
        return "(&" + "".join(str(f) for f in self.filters) + ")"


@dataclass(frozen=True)
class Or(LdapFilter):
    """``(|...)``: at least one filter matches; ``(|)`` matches nobody (RFC 4526)."""

    filters: tuple[LdapFilter, ...]

    def _match(self, attributes: _Normalised) -> bool:
        return any(f._match(attributes) for f in self.filters)

    def __str__(self) -> str:
        return "(|" + "".join(str(f) for f in self.filters) + ")"


@dataclass(frozen=True)
class Not(LdapFilter):
    """``(!...)``: the filter does not match (two-valued: true when the attribute is missing)."""

    filter: LdapFilter

    def _match(self, attributes: _Normalised) -> bool:
        return not self.filter._match(attributes)

    def __str__(self) -> str:
        return f"(!{self.filter})"


@dataclass(frozen=True)
class Equality(LdapFilter):
    """``(attribute=value)``: some value equals ``value``, ignoring case."""

    attribute: str
    value: str

    def _match(self, attributes: _Normalised) -> bool:
        wanted = self.value.casefold()
        return any(v.casefold() == wanted for v in _values(attributes, self.attribute))

    def __str__(self) -> str:
        return f"({self.attribute}={escape_value(self.value)})"


@dataclass(frozen=True)
class Presence(LdapFilter):
    """``(attribute=*)``: the attribute has at least one non-empty value."""

    attribute: str

    def _match(self, attributes: _Normalised) -> bool:
        return bool(_values(attributes, self.attribute))

    def __str__(self) -> str:
        return f"({self.attribute}=*)"


@dataclass(frozen=True)
class Substring(LdapFilter):
    """``(attribute=initial*middle*...*final)``, ignoring case.

    ``middle`` holds RFC 4515's "any" pieces, each non-empty; ``initial`` and ``final`` are
    empty when the pattern starts or ends with ``*``. At least one piece is non-empty (an
    all-wildcard pattern is a `Presence`).
    """

    attribute: str
    initial: str
    middle: tuple[str, ...]
    final: str

    def __post_init__(self) -> None:
        if any(not piece for piece in self.middle):
            raise ValueError("Substring middle pieces must be non-empty")
        if not (self.initial or self.middle or self.final):
            raise ValueError("A Substring needs at least one non-empty piece; use Presence")

    def _match(self, attributes: _Normalised) -> bool:
        return any(self._match_value(v.casefold()) for v in _values(attributes, self.attribute))

    def _match_value(self, value: str) -> bool:
        initial, final = self.initial.casefold(), self.final.casefold()
        if len(initial) + len(final) > len(value):
            return False
        if not value.startswith(initial) or not value.endswith(final):
            return False
        start, stop = len(initial), len(value) - len(final)
        for piece in self.middle:
            found = value.find(piece.casefold(), start, stop)
            if found < 0:
                return False
            start = found + len(piece.casefold())
        return True

    def __str__(self) -> str:
        middle = "".join(escape_value(piece) + "*" for piece in self.middle)
        return f"({self.attribute}={escape_value(self.initial)}*{middle}{escape_value(self.final)})"


@dataclass(frozen=True)
class GreaterOrEqual(LdapFilter):
    """``(attribute>=value)``: numerically if both sides are integers, else as casefolded text."""

    attribute: str
    value: str

    def _match(self, attributes: _Normalised) -> bool:
        return any(_order(v, self.value) >= 0 for v in _values(attributes, self.attribute))

    def __str__(self) -> str:
        return f"({self.attribute}>={escape_value(self.value)})"


@dataclass(frozen=True)
class LessOrEqual(LdapFilter):
    """``(attribute<=value)``: numerically if both sides are integers, else as casefolded text."""

    attribute: str
    value: str

    def _match(self, attributes: _Normalised) -> bool:
        return any(_order(v, self.value) <= 0 for v in _values(attributes, self.attribute))

    def __str__(self) -> str:
        return f"({self.attribute}<={escape_value(self.value)})"


@dataclass(frozen=True)
class Approx(LdapFilter):
    """``(attribute~=value)``: equal once both sides are casefolded and stripped to letters and
    digits, so ``(cn~=johnsmith)`` matches "John Smith" and "john.smith" (no sound-alike rules).
    """

    attribute: str
    value: str

    def _match(self, attributes: _Normalised) -> bool:
        wanted = _approximate(self.value)
        return any(_approximate(v) == wanted for v in _values(attributes, self.attribute))

    def __str__(self) -> str:
        return f"({self.attribute}~={escape_value(self.value)})"


def parse_filter(text: str) -> LdapFilter:
    """Parse RFC 4515 filter text; raises `FilterError` (and nothing else) if it is malformed.

    Besides the RFC this accepts: whitespace around and between filters (``(& (a=1) (b=2))``),
    ``(&)`` and ``(|)`` (RFC 4526), ``a**b`` as ``a*b``, and, as many admins type it, a filter
    without its outer parentheses (``sn=Smith`` means ``(sn=Smith)``; trailing whitespace is then
    dropped). Attribute options (``;lang-de``) are accepted and ignored; extensible matches
    (``:=``) are refused. Positions in messages count characters from 1.
    """
    try:
        return _Parser(text).parse()
    except FilterError as error:
        log.debug("Refused filter: %s", error)
        raise


def matches(text_or_filter: str | LdapFilter, attributes: Attributes) -> bool:
    """Whether the recipient's attributes satisfy the filter (text is parsed, `FilterError`)."""
    if isinstance(text_or_filter, str):
        text_or_filter = _parse_cached(text_or_filter)
    return text_or_filter.matches(attributes)


def attribute_names(f: LdapFilter) -> set[str]:
    """The attribute names the filter tests, lowercased."""
    return {name.lower() for name in _attributes_of(f)}


def escape_value(value: str) -> str:
    """A value written for a filter: ``* ( ) \\``, NUL and control characters as ``\\XX``."""
    out: list[str] = []
    for char in value:
        if char in "*()\\" or ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


_parse_cached = lru_cache(maxsize=256)(parse_filter)


def _attributes_of(f: LdapFilter) -> Iterator[str]:
    if isinstance(f, And | Or):
        for child in f.filters:
            yield from _attributes_of(child)
    elif isinstance(f, Not):
        yield from _attributes_of(f.filter)
    elif isinstance(f, Equality | Presence | Substring | GreaterOrEqual | LessOrEqual | Approx):
        yield f.attribute


def _normalise(attributes: Attributes) -> _Normalised:
    # Empty strings count as absent, as they do in a directory.
    result: dict[str, tuple[str, ...]] = {}
    for name, raw in attributes.items():
        if raw is None:
            values: tuple[str, ...] = ()
        elif isinstance(raw, str):
            values = (raw,) if raw else ()
        else:
            values = tuple(v for v in raw if isinstance(v, str) and v)
        key = name.lower()
        result[key] = result.get(key, ()) + values
    return result


def _values(attributes: _Normalised, attribute: str) -> tuple[str, ...]:
    return attributes.get(attribute.lower(), ())


def _order(value: str, wanted: str) -> int:
    """Negative, zero or positive as ``value`` sorts before, with or after ``wanted``."""
    if _INTEGER.fullmatch(value) and _INTEGER.fullmatch(wanted):
        x, y = int(value), int(wanted)
        return (x > y) - (x < y)
    a, b = value.casefold(), wanted.casefold()
    return (a > b) - (a < b)


def _approximate(value: str) -> str:
    return "".join(c for c in value.casefold() if c.isalnum())


def _describe(char: str) -> str:
    if char == "":
        return "the end of the filter"
    if char == " ":
        return "a space"
    if char.isprintable():
        return f"'{char}'"
    return f"character U+{ord(char):04X}"


class _Parser:
    """Recursive descent over RFC 4515 section 3, one instance per text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)

    def fail(self, problem: str, advice: str, at: int | None = None) -> NoReturn:
        position = (self.pos if at is None else at) + 1
        raise FilterError(
            f"Filter {self.text} is malformed at character {position}: {problem}. {advice}",
            position,
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def skip_space(self) -> None:
        while self.pos < self.end and self.text[self.pos] in _WS:
            self.pos += 1

    def parse(self) -> LdapFilter:
        self.skip_space()
        if self.pos >= self.end:
            raise FilterError(
                "The filter is empty. Enter a filter such as (mailNickname=*), "
                "which matches every recipient with an alias.",
                1,
            )
        if self.peek() == "(":
            result = self.parse_parenthesised(1)
            self.skip_space()
            if self.pos < self.end:
                self.fail(
                    f"unexpected {_describe(self.peek())} after the end of the filter",
                    "To combine filters, wrap them in (&...) or (|...); otherwise check the "
                    "parentheses.",
                )
            return result
        # Convenience: no outer parentheses, e.g. "sn=Smith".
        self.end = len(self.text.rstrip(_WS))
        result = self.parse_component(0)
        if self.pos < self.end:
            self.fail(f"unexpected {_describe(self.peek())}", "Check the parentheses.")
        return result

    def parse_parenthesised(self, depth: int) -> LdapFilter:
        if depth > MAX_DEPTH:
            self.fail(
                "the filter is nested too deeply",
                f"Use at most {MAX_DEPTH} levels of parentheses.",
            )
        self.pos += 1  # the "(" the caller saw
        self.skip_space()
        result = self.parse_component(depth)
        if self.pos >= self.end:
            self.fail("missing ')'", "Check the parentheses.")
        if self.peek() != ")":
            self.fail(f"expected ')' but found {_describe(self.peek())}", "Check the parentheses.")
        self.pos += 1
        return result

    def parse_component(self, depth: int) -> LdapFilter:
        char = self.peek()
        if char in ("&", "|"):
            self.pos += 1
            filters = self.parse_list(depth)
            return And(filters) if char == "&" else Or(filters)
        if char == "!":
            return self.parse_not(depth)
        return self.parse_item()

    def parse_list(self, depth: int) -> tuple[LdapFilter, ...]:
        filters: list[LdapFilter] = []
        self.skip_space()
        while self.peek() == "(":
            filters.append(self.parse_parenthesised(depth + 1))
            self.skip_space()
        return tuple(filters)

    def parse_not(self, depth: int) -> LdapFilter:
        bang = self.pos
        self.pos += 1
        self.skip_space()
        if self.peek() != "(":
            self.fail(
                "'!' must be followed by one filter in parentheses",
                "Write it as (!(attribute=value)).",
            )
        inner = self.parse_parenthesised(depth + 1)
        self.skip_space()
        if self.peek() == "(":
            self.fail(
                f"the '!' at character {bang + 1} takes exactly one filter",
                "To negate several, write (!(|(a=1)(b=2))).",
            )
        return Not(inner)

    def parse_item(self) -> LdapFilter:
        attribute = self.parse_attribute()
        char = self.peek()
        if char == "=":
            operator = "="
            self.pos += 1
        elif char in ("~", ">", "<") and self.text[self.pos + 1 : self.pos + 2] == "=":
            operator = char + "="
            self.pos += 2
        elif char == ":":
            self.fail_extensible()
        else:
            self.fail(
                f"expected '=', '~=', '>=' or '<=' after the attribute name {attribute} "
                f"but found {_describe(char)}",
                "Attribute names use only letters, digits and hyphens, e.g. (sn=Smith).",
            )
        pieces, stars = self.parse_value()
        if operator == "=":
            if len(pieces) == 1:
                return Equality(attribute, pieces[0])
            middle = tuple(piece for piece in pieces[1:-1] if piece)
            if not (pieces[0] or middle or pieces[-1]):
                return Presence(attribute)
            return Substring(attribute, pieces[0], middle, pieces[-1])
        if stars:
            self.fail(
                f"'*' is not allowed in a '{operator}' comparison",
                "Wildcards work only with '='. " + _ESCAPE_ADVICE,
                at=stars[0],
            )
        if operator == ">=":
            return GreaterOrEqual(attribute, pieces[0])
        if operator == "<=":
            return LessOrEqual(attribute, pieces[0])
        return Approx(attribute, pieces[0])

    def fail_extensible(self) -> NoReturn:
        self.fail(
            "extensible matching (':=') is not supported",
            "Use =, ~=, >= or <= instead.",
        )

    def parse_attribute(self) -> str:
        """An attribute type (a name or a dotted OID); options after ';' are dropped."""
        start = self.pos
        char = self.peek()
        if char in _DIGIT:
            self.read_oid()
        elif char in _ALPHA:
            while self.peek() in _KEYCHAR:
                self.pos += 1
        elif char == ":":
            self.fail_extensible()
        elif char in ("=", "~", "<", ">"):
            self.fail("missing attribute name", "Write it as (attribute=value), e.g. (sn=Smith).")
        elif char == "":
            self.fail("the filter ends too early", "Check the parentheses.")
        else:
            self.fail(
                f"expected '&', '|', '!' or an attribute name but found {_describe(char)}",
                "A filter looks like (sn=Smith); attribute names start with a letter. "
                "Check the parentheses.",
            )
        name = self.text[start : self.pos]
        while self.peek() == ";":
            self.pos += 1
            option_start = self.pos
            while self.peek() in _KEYCHAR:
                self.pos += 1
            if self.pos == option_start:
                self.fail(
                    "empty attribute option after ';'",
                    "Remove the ';' or write an option such as ;binary.",
                )
        return name

    def read_oid(self) -> None:
        while True:
            while self.peek() in _DIGIT:
                self.pos += 1
            if self.peek() != ".":
                return
            self.pos += 1
            if self.peek() not in _DIGIT:
                self.fail(
                    "an OID needs digits after each '.'",
                    "Write a numeric OID such as 2.5.4.3, or use the attribute's name.",
                )

    def parse_value(self) -> tuple[list[str], list[int]]:
        """The value up to ')' or the end, split at unescaped '*'; also where each '*' was."""
        pieces: list[str] = []
        stars: list[int] = []
        buffer = bytearray()
        piece_start = self.pos
        while self.pos < self.end:
            char = self.text[self.pos]
            if char == ")":
                break
            if char == "(":
                self.fail(
                    "unescaped '(' in a value",
                    "Write \\28 for a literal '(' or check the parentheses.",
                )
            if char == "\\":
                digits = self.text[self.pos + 1 : min(self.pos + 3, self.end)]
                if len(digits) != 2 or not all(d in _HEX for d in digits):
                    self.fail("'\\' must be followed by two hexadecimal digits", _ESCAPE_ADVICE)
                buffer.append(int(digits, 16))
                self.pos += 3
            elif char == "*":
                pieces.append(self.decode(buffer, piece_start))
                stars.append(self.pos)
                buffer.clear()
                self.pos += 1
                piece_start = self.pos
            elif char == "\x00":
                self.fail("a NUL character in a value", "Write \\00 instead.")
            else:
                try:
                    buffer += char.encode("utf-8")
                except UnicodeEncodeError:
                    self.fail(f"{_describe(char)} is not a valid character", "Remove it.")
                self.pos += 1
        pieces.append(self.decode(buffer, piece_start))
        return pieces, stars

    def decode(self, buffer: bytearray, piece_start: int) -> str:
        try:
            return buffer.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(
                "the escaped bytes in this value are not valid UTF-8",
                "Type non-ASCII characters directly, or escape all their UTF-8 bytes "
                "(ä is \\c3\\a4).",
                at=piece_start,
            )
