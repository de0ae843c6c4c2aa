"""The STARTTLS certificate: the one set in the settings, or a self-signed one made on first use."""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import logging
import os
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from app.errors import PostroomError
from app.paths import DataPaths
from app.settings import Settings

log = logging.getLogger(__name__)

CERT_NAME = "self-signed.crt"
KEY_NAME = "self-signed.key"
_VALID_DAYS = 3650


def certificate_files(settings: Settings, paths: DataPaths) -> tuple[Path, Path]:
    """The certificate and key to use, making the self-signed pair when none is set."""
    if settings.tls_cert:
        key = settings.tls_key or settings.tls_cert
        return Path(settings.tls_cert).expanduser(), Path(key).expanduser()
    own_cert, own_key = paths.tls / CERT_NAME, paths.tls / KEY_NAME
    if own_cert.exists() and own_key.exists():
        return own_cert, own_key
    # The SMTP service and Dovecot's start (other threads, or another process) may both come
    # here first: one makes the pair while the others wait, so a key never meets another's
    # certificate and no write takes another's temporary file.
    try:
        paths.tls.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(paths.tls / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise PostroomError(
            f"Cannot write the self-signed TLS certificate in {paths.tls}: "
            f"{error.strerror or error}. Check the data directory's permissions."
        ) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not (own_cert.exists() and own_key.exists()):
            make_self_signed(own_cert, own_key, settings.host_name)
    finally:
        os.close(fd)
    return own_cert, own_key


def server_context(settings: Settings, paths: DataPaths) -> ssl.SSLContext:
    """An SSL context for STARTTLS (clients are not asked for certificates)."""
    cert, key = certificate_files(settings, paths)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise PostroomError(
            f"Cannot use the TLS certificate {cert} with the key {key}: {error}. "
            "Set tls_cert and tls_key to a PEM certificate and its key, or clear tls_cert "
            "to use a self-signed certificate."
        ) from error
    return context


def make_self_signed(cert_path: Path, key_path: Path, host_name: str) -> None:
    """Write a new key and a self-signed certificate for ``host_name`` (files 0600, folder 0700)."""
    folder = cert_path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name[:64] or "localhost")])
        alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
        if host_name and host_name != "localhost":
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host_name)))
            except ValueError:
                alt.append(x509.DNSName(host_name))
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=_VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    except OSError as error:
        raise PostroomError(
            f"Cannot write the self-signed TLS certificate in {folder}: "
            f"{error.strerror or error}. Check the data directory's permissions."
        ) from error
    log.info("made a self-signed TLS certificate for %s in %s", host_name, folder)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner, replacing any old one atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
