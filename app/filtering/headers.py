"""Editing a received message's header block: our Authentication-Results, rspamd's headers and
X-Spam-Status. Messages here have CRLF line endings throughout."""

from __future__ import annotations

import re

_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def _split(content: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folded lines and CRLF) and the rest (from the empty
    line on)."""
    if content.startswith(b"\r\n"):
        return [], content
    end = content.find(b"\r\n\r\n")
    head, rest = (content, b"") if end < 0 else (content[: end + 2], content[end + 2 :])
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1] if head.endswith(b"\r\n") else head.split(b"\r\n"):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, rest


def _name(field: bytes) -> bytes:
    found = _FIELD_NAME.match(field)
    return found.group(1).lower() if found else b""


def authserv_id(field: bytes) -> str:
    """The authserv-id of an Authentication-Results field (RFC 8601 §2.2), lower case."""
    value = field.split(b":", 1)[1] if b":" in field else b""
    text = re.sub(rb"\([^)]*\)", b" ", value).decode("utf-8", "replace")
    return text.split(";", 1)[0].strip().split()[0].lower() if text.strip(" \r\n\t;") else ""


def fold(name: str, value: str) -> bytes:
    """A header field from a name and a value that may hold line breaks (made CRLF + tab)."""
    lines = [line.strip() for line in re.split(r"\r\n|\r|\n", value) if line.strip()]
    return (f"{name}: " + "\r\n\t".join(lines) + "\r\n").encode("utf-8", "replace")


def rewrite(
    content: bytes,
    host_name: str,
    add: list[tuple[str, str]],
    remove: tuple[str, ...] = (),
) -> bytes:
    """``content`` without Authentication-Results claiming ``host_name`` (anyone may forge
    ours) or fields named in ``remove``, with ``add`` put first (trace fields go on top)."""
    fields, rest = _split(content)
    ours = host_name.lower()
    removed = {name.lower().encode() for name in remove}
    kept = [
        field
        for field in fields
        if _name(field) not in removed
        and not (_name(field) == b"authentication-results" and authserv_id(field) == ours)
    ]
    added = [fold(name, value) for name, value in add]
    if not fields and not rest.startswith(b"\r\n"):
        rest = b"\r\n" + rest
    return b"".join(added + kept) + rest
