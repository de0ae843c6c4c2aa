"""DKIM keys of the hosted domains: made, stored 0600 under ``<data>/dkim/``, rotated."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import enum
import fcntl
import json
import logging
import os
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.errors import PostroomError
from app.paths import DataPaths

log = logging.getLogger(__name__)

ALGORITHM = "rsa"
RSA_BITS = 2048
#: Selectors are this prefix, the year and month the key was made, and a letter on a clash.
SELECTOR_PREFIX = "pr"
_STATE_FILE = "state.json"
_LOCK_FILE = ".lock"
# A-labels only: the folder name must never leave <data>/dkim/.
_DOMAIN_FOLDER = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
_SELECTOR = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class DkimError(PostroomError):
    """A DKIM request that cannot be carried out; the message says what to do."""


class KeyRole(enum.Enum):
    """What a key is for: signing now, or waiting for its record to appear in DNS."""

    SIGNING = "signing"
    PENDING = "pending"


@dataclass(frozen=True)
class DkimKey:
    """One DKIM key of one domain, as stored."""

    #: The domain as lower-case A-labels.
    domain: str
    selector: str
    algorithm: str
    role: KeyRole
    #: The private key file (PEM, 0600).
    path: Path
    #: The TXT record's value (``v=DKIM1; k=rsa; p=...``); "" when it cannot be known.
    txt: str
    #: What is wrong with the key file, in one line; "" when it can sign.
    problem: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem

    @property
    def record_name(self) -> str:
        """Where the TXT record goes: ``SELECTOR._domainkey.DOMAIN`` (no final dot)."""
        return f"{self.selector}._domainkey.{self.domain}"


def txt_record(public_key: rsa.RSAPublicKey) -> str:
    """The DKIM TXT record value publishing ``public_key`` (RFC 6376 §3.6.1)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k={ALGORITHM}; p={base64.b64encode(der).decode('ascii')}"


def new_selector(existing: Iterable[str], today: dt.date) -> str:
    """A selector with the month in it, e.g. ``pr202612``; ``pr202612b`` if that one is taken."""
    taken = set(existing)
    stem = SELECTOR_PREFIX + today.strftime("%Y%m")
    for suffix in ["", *list(string.ascii_lowercase[1:])]:
        candidate = stem + suffix
        if candidate not in taken:
            return candidate
    raise DkimError(
        f"Every selector for {today:%B %Y} ({stem} to {stem}z) is used; rotate again next month."
    )


def domain_keys(paths: DataPaths, domain: str) -> list[DkimKey]:
    """The keys of ``domain`` (an A-label): the signing key, then the pending one; [] if none."""
    folder = _folder(paths, domain)
    state = _read_state(folder)
    if state is None:
        return []
    keys = [_load_key(folder, domain, state.signing, KeyRole.SIGNING)]
    if state.pending:
        keys.append(_load_key(folder, domain, state.pending, KeyRole.PENDING))
    return keys


def ensure_keys(
    paths: DataPaths, domains: Iterable[str], today: dt.date | None = None
) -> list[str]:
    """Make a signing key for each domain (A-labels) that has none yet; returns those made.

    A domain whose key file was damaged or deleted keeps that state (its mail goes out unsigned)
    until the administrator rotates it: a silent new key would not match the published record.
    """
    made: list[str] = []
    wanted = [domain for domain in domains if not _state_path(paths, domain).exists()]
    if not wanted:
        return made
    with _locked(paths):
        for domain in wanted:
            folder = _folder(paths, domain)
            if _read_state(folder) is not None:
                continue  # another process made it while we waited for the lock
            selector = _make_key(folder, today)
            _write_state(folder, _State(selector, None))
            log.info("made DKIM key %s for %s", selector, domain)
            made.append(domain)
    return made


def rotate(
    paths: DataPaths, domain: str, *, force: bool = False, today: dt.date | None = None
) -> list[DkimKey]:
    """Make a new key for ``domain`` to sign with once its record is in DNS; returns the keys.

    With ``force`` the domain signs with the new key at once (the pending one if a rotation is
    already waiting and its file is sound): the way out when the signing key or the state file
    was damaged or lost.
    Without it, a second rotation while one waits for its record is refused.
    """
    with _locked(paths):
        folder = _folder(paths, domain)
        try:
            state = _read_state(folder)
        except DkimError:
            if not force:
                raise
            state = None  # the way out of a damaged state file: a fresh key
        if state is None:
            selector = _make_key(folder, today)
            _write_state(folder, _State(selector, None))
            return domain_keys(paths, domain)
        if state.pending and not force:
            raise DkimError(
                f"A new key ({state.pending}) for {domain} is already waiting for its DNS record "
                f"{state.pending}._domainkey.{domain}; publish it (postroom dkim show {domain}), "
                f"or sign with it now with postroom dkim rotate {domain} --force."
            )
        if (
            force
            and state.pending
            and _load_key(folder, domain, state.pending, KeyRole.PENDING).usable
        ):
            new_state = _State(state.pending, None)
        else:
            selector = _make_key(folder, today)
            new_state = _State(selector, None) if force else _State(state.signing, selector)
        _write_state(folder, new_state)
        log.info(
            "DKIM rotation for %s: signing %s, pending %s",
            domain,
            new_state.signing,
            new_state.pending,
        )
    return domain_keys(paths, domain)


def promote(paths: DataPaths, domain: str, selector: str) -> bool:
    """Sign with the pending key ``selector`` from now on; False if it is no longer pending."""
    with _locked(paths):
        folder = _folder(paths, domain)
        state = _read_state(folder)
        if state is None or state.pending != selector:
            return False
        _write_state(folder, _State(selector, None))
    log.info("DKIM key %s of %s is in DNS; signing with it", selector, domain)
    return True


# --- storage -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    signing: str
    pending: str | None


def _folder(paths: DataPaths, domain: str) -> Path:
    if not _DOMAIN_FOLDER.fullmatch(domain) or ".." in domain:
        raise DkimError(f"{domain!r} is not a domain in A-label form, e.g. example.net.")
    return paths.dkim / domain


def _state_path(paths: DataPaths, domain: str) -> Path:
    return _folder(paths, domain) / _STATE_FILE


def _read_state(folder: Path) -> _State | None:
    """The folder's state; None when the domain has no keys. A damaged state file is refused."""
    path = folder / _STATE_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise DkimError(
            f"The DKIM state file {path} cannot be read ({error}); restore it from a backup, "
            f"or make a new key with postroom dkim rotate {folder.name} --force."
        ) from None
    signing = data.get("signing") if isinstance(data, dict) else None
    pending = data.get("pending") if isinstance(data, dict) else None
    if not (isinstance(signing, str) and _SELECTOR.fullmatch(signing)) or not (
        pending is None or (isinstance(pending, str) and _SELECTOR.fullmatch(pending))
    ):
        raise DkimError(
            f"The DKIM state file {path} does not name a signing selector; restore it from a "
            f"backup, or make a new key with postroom dkim rotate {folder.name} --force."
        )
    return _State(signing, pending)


def _write_state(folder: Path, state: _State) -> None:
    data = json.dumps({"signing": state.signing, "pending": state.pending}).encode()
    _write_private(folder / _STATE_FILE, data, replace=True)


def _make_key(folder: Path, today: dt.date | None) -> str:
    """A new RSA key and its record in ``folder``; returns its selector."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = {path.name.split(".")[0] for path in folder.iterdir()}
    selector = new_selector(existing, today or dt.date.today())
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(folder / f"{selector}.txt", txt_record(key.public_key()).encode() + b"\n")
    _write_private(folder / f"{selector}.key", pem)
    return selector


def _write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` durably to a new 0600 file (``replace``: atomically over the old one)."""
    target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _load_key(folder: Path, domain: str, selector: str, role: KeyRole) -> DkimKey:
    """The stored key, with what is wrong with its file if it cannot sign."""
    path = folder / f"{selector}.key"
    recorded = _recorded_txt(folder / f"{selector}.txt")
    problem, txt = _check_key_file(path, recorded)
    return DkimKey(domain, selector, ALGORITHM, role, path, txt, problem)


def _recorded_txt(path: Path) -> str:
    try:
        return path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _check_key_file(path: Path, recorded: str) -> tuple[str, str]:
    """(problem, record): the problem is "" when the file holds the RSA key of the record."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return f"the key file {path} was deleted", recorded
    except OSError as error:
        return f"the key file {path} cannot be read ({error.strerror})", recorded
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return f"the key file {path} is damaged (not a PEM private key)", recorded
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
        return f"the key file {path} is damaged (not an RSA key of 1024 bits or more)", recorded
    txt = txt_record(key.public_key())
    if recorded and recorded != txt:
        return f"the key file {path} does not hold the key of its record", recorded
    return "", txt


@contextlib.contextmanager
def _locked(paths: DataPaths) -> Iterator[None]:
    """One writer of ``<data>/dkim/`` at a time, across processes (CLI, console, serve); a
    failed write inside becomes a ``DkimError`` that says what to fix."""
    try:
        paths.dkim.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(paths.dkim / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
    except OSError as error:
        raise DkimError(
            f"Cannot write DKIM keys under {paths.dkim}: {error.strerror or error}; fix the "
            "folder's permissions (it must belong to the user running Postroom)."
        ) from error
