"""The Mailbox Store as the console shows it: each Maildir's items, size and messages, read-only.

A Maildir is read the way every Maildir client reads it: the messages are the files in ``new/``
and ``cur/`` (``tmp/`` holds deliveries not yet finished), a message's key is its file name up to
the ``:`` that starts its flags. Postroom's own file names carry the delivery time
(``<seconds>.M<microseconds>…``) and the size (``,S=<bytes>``), so listing a mailbox costs one
directory read; other names fall back to a ``stat``. Messages are opened by key through the
standard library's ``mailbox.Maildir`` (which finds a message even after a client moved it from
``new/`` to ``cur/``) and parsed with ``email``.

Nothing here writes to a mailbox. Every function reads the disk and may take a while on a big
mailbox: call them off the GUI thread. ``MailboxScanner`` is for one thread at a time.
"""

from __future__ import annotations

import contextlib
import email.header
import email.policy
import logging
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from html.parser import HTMLParser
from pathlib import Path

from app.directory import recipients
from app.errors import NotFoundError, PostroomError
from app.paths import DataPaths
from app.store import Store

log = logging.getLogger(__name__)

#: The folders that hold delivered messages (``tmp/`` holds deliveries in progress).
MESSAGE_FOLDERS = ("new", "cur")
#: At most this much of a file is read to find its header.
HEADER_LIMIT = 256 * 1024
#: The text part is cut at this many characters (the rest is not shown, and that is said).
TEXT_LIMIT = 1_000_000

_NAME_TIME = re.compile(r"^(\d{9,11})(?:\.M(\d{1,6}))?")
_NAME_SIZE = re.compile(r",S=(\d+)")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class FolderStats:
    """What a Maildir holds: how many messages, their bytes, and the newest delivery."""

    items: int = 0
    size: int = 0
    #: Unix time of the newest message, None when the mailbox is empty.
    last_delivery: float | None = None


@dataclass(frozen=True)
class MailboxSummary:
    """One mailbox as the Mailboxes list shows it."""

    #: The Maildir's folder name under ``<data>/mailboxes`` (the user's alias, lower case).
    name: str
    path: Path
    #: The user's display name; '' for a folder no user owns.
    display_name: str = ""
    #: The user's primary SMTP address; '' when it has none (yet) or no user owns the folder.
    address: str = ""
    #: The user's alias as typed; '' for a folder no user owns.
    alias: str = ""
    #: False when the Maildir exists but no user owns it (postmaster's fallback, a deleted user).
    has_user: bool = True
    #: False when the user has never received mail (the Maildir is made by the first delivery).
    exists: bool = True
    stats: FolderStats = FolderStats()

    @property
    def items(self) -> int:
        return self.stats.items

    @property
    def size(self) -> int:
        return self.stats.size

    @property
    def last_delivery(self) -> float | None:
        return self.stats.last_delivery


@dataclass(frozen=True)
class MessageSummary:
    """One message in a mailbox's list."""

    #: The Maildir key: the file name up to the ':' of its flags.
    key: str
    sender: str
    subject: str
    #: When it was delivered here (Unix time), from its file name or the file's time.
    received: float
    size: int
    #: True while it is in ``new/`` or has no Seen flag (``S``) in ``cur/``.
    unread: bool = False


@dataclass(frozen=True)
class MessagePart:
    """A part of a message other than the text shown: an attachment, an HTML alternative …"""

    content_type: str
    filename: str
    size: int


@dataclass(frozen=True)
class MessageContent:
    """A message read for display: every header (decoded) and its text."""

    key: str
    headers: tuple[tuple[str, str], ...]
    text: str
    #: Said above the text when it is not simply the plain-text part (HTML only, cut, none).
    note: str = ""
    parts: tuple[MessagePart, ...] = ()
    size: int = 0

    def header(self, name: str) -> str:
        """The first header of that name (any case), '' when there is none."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), "")


@dataclass(frozen=True)
class _Entry:
    key: str
    path: Path
    received: float
    size: int
    unread: bool


# -- one Maildir --------------------------------------------------------------------------------


def folder_stamp(maildir: Path) -> tuple[int, int] | None:
    """The modification times of ``new/`` and ``cur/``: they change whenever a message arrives,
    is moved or is deleted, so an unchanged stamp means an unchanged mailbox. None when the
    Maildir does not exist. Two ``stat`` calls."""
    try:
        new, cur = (os.stat(maildir / folder).st_mtime_ns for folder in MESSAGE_FOLDERS)
    except FileNotFoundError:
        return None
    except OSError as error:
        log.debug("cannot stat %s: %s", maildir, error)
        return None
    return new, cur


def folder_stats(maildir: Path) -> FolderStats:
    """Count the messages of a Maildir, add up their sizes and find the newest delivery."""
    items = 0
    size = 0
    newest: float | None = None
    for entry in _entries(maildir):
        items += 1
        size += entry.size
        newest = entry.received if newest is None else max(newest, entry.received)
    return FolderStats(items, size, newest)


def list_messages(maildir: Path) -> list[MessageSummary]:
    """The messages of a Maildir with their sender and subject, newest first.

    Reads each message's header (up to ``HEADER_LIMIT`` bytes), so it takes a while on a big
    mailbox. A missing Maildir is an empty list. A message that goes away while it is being
    listed (a mail client deleted it) is left out.
    """
    found: list[MessageSummary] = []
    for entry in _entries(maildir):
        try:
            header = _read_header(entry.path)
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("cannot read %s: %s", entry.path, error)
            header = None
        found.append(
            MessageSummary(
                key=entry.key,
                sender=_header_text(header, "From"),
                subject=_header_text(header, "Subject"),
                received=entry.received,
                size=entry.size,
                unread=entry.unread,
            )
        )
    found.sort(key=lambda message: (message.received, message.key), reverse=True)
    return found


def read_message(maildir: Path, key: str) -> MessageContent:
    """One message's headers and text part, decoded, for reading.

    The text is the first ``text/plain`` part; a message with only HTML shows that as text;
    every other part is listed in ``parts``. Raises ``NotFoundError`` when the message is no
    longer there (a mail client moved or deleted it).
    """
    try:
        box = mailbox.Maildir(str(maildir), factory=None, create=False)
        data = box.get_bytes(key)
    except (KeyError, FileNotFoundError, mailbox.NoSuchMailboxError):
        raise NotFoundError(
            "The message is no longer in the mailbox: a mail client may have deleted or moved it. "
            "Refresh the list."
        ) from None
    except OSError as error:
        raise PostroomError(f"Cannot read the message: {error.strerror or error}.") from error
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    headers = tuple(_headers(message))
    text, note = _text_of(message)
    if len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT]
        note = _join(note, f"Only the first {TEXT_LIMIT:,} characters of the text are shown.")
    return MessageContent(
        key=key,
        headers=headers,
        text=text,
        note=note,
        parts=tuple(_other_parts(message)),
        size=len(data),
    )


# -- the whole store ----------------------------------------------------------------------------


class MailboxScanner:
    """Lists every mailbox, recounting only the Maildirs that changed since the last scan.

    A mailbox whose ``folder_stamp`` is unchanged keeps the counts of the previous scan, so a
    rescan with nothing new costs two ``stat`` calls per mailbox. One thread at a time.
    """

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths
        self._known: dict[Path, tuple[tuple[int, int], FolderStats]] = {}

    def scan(self, store: Store) -> list[MailboxSummary]:
        """Every user's mailbox and every Maildir folder no user owns, by folder name."""
        by_folder: dict[str, MailboxSummary] = {}
        for alias, display_name, address in _users(store):
            path = self.paths.mailbox(alias)
            by_folder[path.name] = MailboxSummary(
                name=path.name,
                path=path,
                display_name=display_name,
                address=address,
                alias=alias,
            )
        for folder in _maildir_folders(self.paths.mailboxes):
            by_folder.setdefault(
                folder.name, MailboxSummary(name=folder.name, path=folder, has_user=False)
            )
        seen: set[Path] = set()
        result = []
        for name in sorted(by_folder):
            summary = by_folder[name]
            stats = self.stats(summary.path)
            seen.add(summary.path)
            result.append(
                MailboxSummary(
                    name=summary.name,
                    path=summary.path,
                    display_name=summary.display_name,
                    address=summary.address,
                    alias=summary.alias,
                    has_user=summary.has_user,
                    exists=stats is not None,
                    stats=stats or FolderStats(),
                )
            )
        for gone in set(self._known) - seen:
            del self._known[gone]
        return result

    def stats(self, maildir: Path) -> FolderStats | None:
        """The Maildir's stats, recounted only when its stamp moved; None if it does not exist."""
        stamp = folder_stamp(maildir)
        if stamp is None:
            self._known.pop(maildir, None)
            return None
        known = self._known.get(maildir)
        if known is not None and known[0] == stamp:
            return known[1]
        stats = folder_stats(maildir)
        self._known[maildir] = (stamp, stats)
        return stats

    def changed(self) -> bool:
        """Whether any Maildir counted before has moved on, or a new Maildir folder appeared
        (cheap: a ``stat`` per known mailbox and one directory read)."""
        for maildir, (stamp, _) in list(self._known.items()):
            if folder_stamp(maildir) != stamp:
                return True
        try:
            with os.scandir(self.paths.mailboxes) as entries:
                names = [entry.name for entry in entries if not entry.name.startswith(".")]
        except OSError:
            return False
        root = self.paths.mailboxes
        return any(root / name not in self._known and _is_maildir(root / name) for name in names)


def list_mailboxes(store: Store) -> list[MailboxSummary]:
    """Every user's mailbox and every ownerless Maildir, counted now (see ``MailboxScanner``)."""
    return MailboxScanner(store.paths).scan(store)


def mailbox_path(paths: DataPaths, name: str) -> Path:
    """The Maildir of a mailbox in the list, refusing names that would leave the store."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise PostroomError(f"'{name}' is not a mailbox name.")
    return paths.mailboxes / name


# -- helpers ------------------------------------------------------------------------------------


def _users(store: Store) -> Iterator[tuple[str, str, str]]:
    for person in recipients.list_recipients(store):
        if person.kind == "user":
            yield person.alias, person.display_name, person.primary_address() or ""


def _is_maildir(path: Path) -> bool:
    return not path.is_symlink() and (path / "cur").is_dir()


def _maildir_folders(root: Path) -> list[Path]:
    try:
        with os.scandir(root) as entries:
            return [
                Path(entry.path)
                for entry in entries
                if not entry.name.startswith(".")
                and entry.is_dir(follow_symlinks=False)
                and os.path.isdir(os.path.join(entry.path, "cur"))
            ]
    except OSError:
        return []


def _entries(maildir: Path) -> Iterator[_Entry]:
    """The messages of a Maildir, in no particular order; missing folders are empty."""
    for folder in MESSAGE_FOLDERS:
        try:
            with os.scandir(maildir / folder) as listing:
                names = [(entry.name, entry.path) for entry in listing if entry.name[:1] != "."]
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("cannot list %s: %s", maildir / folder, error)
            continue
        for name, path in names:
            key, _, info = name.partition(":")
            received = _name_time(key)
            size = _name_size(key)
            if received is None or size is None:
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # gone meanwhile
                received = stat.st_mtime if received is None else received
                size = stat.st_size if size is None else size
            unread = folder == "new" or "S" not in info.partition(",")[2]
            yield _Entry(key, Path(path), received, size, unread)


def _name_time(key: str) -> float | None:
    found = _NAME_TIME.match(key)
    if found is None:
        return None
    micro = found.group(2)
    return int(found.group(1)) + (int(micro) / 1_000_000 if micro else 0.0)


def _name_size(key: str) -> int | None:
    found = _NAME_SIZE.search(key)
    return int(found.group(1)) if found else None


def _read_header(path: Path) -> Message:
    """The header of a message file, read up to the blank line (at most ``HEADER_LIMIT``)."""
    data = b""
    with path.open("rb") as handle:
        while len(data) < HEADER_LIMIT:
            chunk = handle.read(8192)
            if not chunk:
                break
            # Look back a little: the blank line may straddle two chunks.
            start = max(0, len(data) - 3)
            data += chunk
            end = _HEADER_END.search(data, start)
            if end is not None:
                data = data[: end.end()]
                break
    return BytesHeaderParser(policy=email.policy.default).parsebytes(data)


def _headers(message: Message) -> Iterator[tuple[str, str]]:
    """Every header as people read it (see ``_decoded``)."""
    for name, raw in message.raw_items():
        yield name, _decoded(message, name, raw)


def _decoded(message: Message, name: str, raw: str) -> str:
    """A header's value as people read it: RFC 2047 words decoded, folding undone, bad bytes
    shown as replacement characters, and never an exception for a malformed one."""
    try:
        text = str(message.policy.header_fetch_parse(name, raw))
    except Exception:  # a header the parser cannot make sense of: decode what was sent
        log.debug("malformed %s header", name, exc_info=True)
        try:
            text = str(email.header.make_header(email.header.decode_header(raw)))
        except Exception:
            text = raw
    return _printable(" ".join(text.split()))


def _header_text(message: Message | None, name: str) -> str:
    """The first header called ``name`` (any case), decoded; '' when there is none."""
    if message is None:
        return ""
    wanted = name.lower()
    for key, raw in message.raw_items():
        if key.lower() == wanted:
            return _decoded(message, key, raw)
    return ""


def _printable(text: str) -> str:
    """Text safe to show: undecodable bytes (surrogate escapes) become replacement characters."""
    if any("\udc80" <= char <= "\udcff" for char in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _join(first: str, second: str) -> str:
    return f"{first} {second}" if first else second


def _content_text(part: Message) -> str:
    """A text part decoded with its charset; an unknown or wrong charset still shows something."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, AssertionError, KeyError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return _printable(str(content))


def _text_of(message: EmailMessage) -> tuple[str, str]:
    """(text, note): the plain-text body, or the HTML body as text, or a note that there is none."""
    body: Message | None
    try:
        body = message.get_body(preferencelist=("plain", "html"))
    except Exception:  # a broken MIME structure: fall back to the first text part
        body = None
    if body is None:
        body = next((p for p in message.walk() if p.get_content_maintype() == "text"), None)
    if body is None:
        if message.is_multipart():
            return "", "The message has no text part; its parts are listed below."
        return "", "The message has no text."
    text = _content_text(body)
    if body.get_content_subtype() == "html":
        return _html_to_text(
            text
        ), "The message has no plain-text part; its HTML part is shown as text."
    if body.get_content_subtype() != "plain":
        return text, f"The message's text is {body.get_content_type()}."
    return text, ""


def _other_parts(message: EmailMessage) -> Iterator[MessagePart]:
    if not message.is_multipart():
        return
    try:
        body = message.get_body(preferencelist=("plain", "html"))
    except Exception:
        body = None
    for part in message.walk():
        if part.is_multipart() or part is body:
            continue
        payload = part.get_payload(decode=True)
        filename = ""
        with contextlib.suppress(Exception):
            filename = _printable(part.get_filename() or "")
        yield MessagePart(
            content_type=part.get_content_type(),
            filename=filename,
            size=len(payload) if isinstance(payload, bytes) else 0,
        )


class _TextExtractor(HTMLParser):
    """Just the words of an HTML body: scripts and styles dropped, blocks on their own lines."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.pieces.append(data)


def _html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.pieces).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
