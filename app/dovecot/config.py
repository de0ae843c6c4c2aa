"""Dovecot's private configuration under ``<data>/dovecot/``, written from Postroom's settings."""

from __future__ import annotations

import hashlib
import os
import pwd
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.errors import PostroomError
from app.mailstore.ownership import mail_owner
from app.paths import DataPaths
from app.settings import Settings, parse_host_port
from app.store.dovecot import dovecot_queries

# The longest socket Dovecot makes in base_dir ("login/imap-urlauth-worker" and the like) must
# fit a Unix socket's 108-byte name; a base_dir longer than this moves under the temp folder.
MAX_BASE_DIR = 72
PROTOCOLS = ("imap", "pop3")


@dataclass(frozen=True)
class DovecotPaths:
    """The files and folders of Postroom's Dovecot."""

    folder: Path
    base_dir: Path

    @property
    def config(self) -> Path:
        return self.folder / "dovecot.conf"

    @property
    def sql_config(self) -> Path:
        return self.folder / "sql.conf.ext"

    @property
    def log(self) -> Path:
        return self.folder / "dovecot.log"

    @property
    def startup_log(self) -> Path:
        """What Dovecot writes to stderr before its log process runs (configuration errors)."""
        return self.folder / "startup.log"

    @property
    def state_dir(self) -> Path:
        return self.folder / "state"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "master.pid"


def dovecot_paths(paths: DataPaths) -> DovecotPaths:
    folder = paths.root / "dovecot"
    base_dir = folder / "run"
    if len(str(base_dir)) > MAX_BASE_DIR:
        digest = hashlib.sha256(str(paths.root).encode()).hexdigest()[:16]
        base_dir = Path(tempfile.gettempdir()) / f"postroom-dovecot-{os.geteuid()}-{digest}"
    return DovecotPaths(folder, base_dir)


@dataclass(frozen=True)
class Listener:
    """One address Dovecot listens on: ``tls`` is implicit TLS (993 / 995), else STARTTLS."""

    protocol: str
    host: str
    port: int
    tls: bool = False

    @property
    def name(self) -> str:
        return {"imap": "IMAP4", "pop3": "POP3"}[self.protocol] + (" over TLS" if self.tls else "")


def listeners(settings: Settings) -> list[Listener]:
    """Every address Dovecot listens on, from the settings of the protocols that are on."""
    found: list[Listener] = []
    for protocol in PROTOCOLS:
        if not getattr(settings, f"{protocol}_enabled"):
            continue
        for tls, key in ((False, f"{protocol}_listen"), (True, f"{protocol}s_listen")):
            for text in getattr(settings, key):
                host, port = parse_host_port(text)
                found.append(Listener(protocol, host, port, tls))
    return found


@dataclass(frozen=True)
class RunAs:
    """The users Dovecot's processes take (see the package docstring)."""

    mail_user: str
    mail_uid: int
    mail_gid: int
    internal_user: str
    login_user: str


def run_as() -> RunAs:
    """Root: mail processes as ``mail``, internal ones as ``dovecot``, login as ``dovenull``;
    otherwise all of them as the user Postroom runs as."""
    owner = mail_owner()
    if owner is not None:
        for name in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                raise PostroomError(
                    f"Dovecot cannot start: the system user '{name}' is missing. Install "
                    "dovecot-imapd and dovecot-pop3d (./run installs them)."
                ) from None
        return RunAs(owner.name, owner.uid, owner.gid, "dovecot", "dovenull")
    if os.geteuid() == 0:
        raise PostroomError(
            "Dovecot cannot serve mail as root and this system has no 'mail' user to serve it "
            "as. Create one (adduser --system mail) or run Postroom as another user."
        )
    me = pwd.getpwuid(os.geteuid())
    return RunAs(me.pw_name, me.pw_uid, me.pw_gid, me.pw_name, me.pw_name)


def _quoted(value: str) -> str:
    """A value for dovecot.conf: double-quoted, with '%' kept literal (%% for var expansion)."""
    if any(char in value for char in '"\\\n\r'):
        raise PostroomError(f"Dovecot cannot use the path {value!r}: it has a quote or a newline.")
    return '"' + value.replace("%", "%%") + '"'


def _file_value(path: Path) -> str:
    """A path read with ``<`` (not quoted), for the TLS certificate and key."""
    text = str(path)
    if any(char.isspace() or char in "\"'\\%" for char in text):
        raise PostroomError(
            f"Dovecot cannot read the TLS file {text}: its path has a space or a quote. "
            "Move it, and set tls_cert and tls_key to the new path."
        )
    return text


def render_sql(paths: DataPaths) -> str:
    """sql.conf.ext: the passdb and userdb queries on the ``dovecot_users`` view."""
    if "\n" in str(paths.root):
        raise PostroomError("Dovecot cannot use a data directory whose path has a newline.")
    queries = dovecot_queries(str(paths.mailboxes) + "/")
    return (
        "# Written by Postroom at every start of its Dovecot; edits here are lost.\n"
        "# The view dovecot_users is documented in app/store/schema.py.\n"
        "driver = sqlite\n"
        f"connect = {paths.database}\n"
        "default_pass_scheme = ARGON2ID\n"
        f"password_query = {queries.password_query}\n"
        f"user_query = {queries.user_query}\n"
        f"iterate_query = {queries.iterate_query}\n"
    )


def render(
    settings: Settings, paths: DataPaths, dovecot: DovecotPaths, cert: Path, key: Path, users: RunAs
) -> str:
    """dovecot.conf for these settings."""
    found = listeners(settings)
    protocols = [p for p in PROTOCOLS if any(item.protocol == p for item in found)]
    lines = [
        "# Written by Postroom at every start of its Dovecot; edits here are lost.",
        "# Change the settings instead: postroom imap set / postroom pop3 set (or the console).",
        f"base_dir = {_quoted(str(dovecot.base_dir))}",
        f"state_dir = {_quoted(str(dovecot.state_dir))}",
        f"instance_name = postroom-{hashlib.sha256(str(paths.root).encode()).hexdigest()[:8]}",
        f"log_path = {_quoted(str(dovecot.log))}",
        f"protocols = {' '.join(protocols)}",
        "listen = 127.0.0.1",  # every listener names its own address below
        f"default_internal_user = {users.internal_user}",
        f"default_login_user = {users.login_user}",
        f"mail_uid = {users.mail_uid}",
        f"mail_gid = {users.mail_gid}",
        f"first_valid_uid = {users.mail_uid}",
        f"last_valid_uid = {users.mail_uid}",
        f"first_valid_gid = {users.mail_gid}",
        f"last_valid_gid = {users.mail_gid}",
        "mail_location = maildir:~",
        "mail_plugins = $mail_plugins quota",
        "mail_privileged_group =",
        "auth_mechanisms = plain login",
        "auth_username_format = %Lu",
        "auth_verbose = yes",
        "disable_plaintext_auth = yes",  # without TLS only on loopback
        "ssl = yes",
        f"ssl_cert = <{_file_value(cert)}",
        f"ssl_key = <{_file_value(key)}",
        "ssl_min_protocol = TLSv1.2",
        "passdb {",
        "  driver = sql",
        f"  args = {_quoted(str(dovecot.sql_config))}",
        "}",
        "userdb {",
        "  driver = sql",
        f"  args = {_quoted(str(dovecot.sql_config))}",
        "}",
        "plugin {",
        "  quota = count:User quota",
        "  quota_vsizes = yes",
        "  quota_rule = *:ignore",
        "}",
        "protocol imap {",
        "  mail_plugins = $mail_plugins imap_quota",
        "  ssl = required" if settings.imap_tls_required else "",
        "}",
        "protocol pop3 {",
        "  ssl = required" if settings.pop3_tls_required else "",
        "}",
    ]
    if users.internal_user == users.mail_user:  # unprivileged: nothing may change user
        lines += [
            "service auth-worker {",
            f"  user = {users.internal_user}",
            "}",
            "service anvil {",
            "  chroot =",
            "}",
        ]
    for protocol in PROTOCOLS:
        mine = [item for item in found if item.protocol == protocol]
        lines.append(f"service {protocol}-login {{")
        if users.internal_user == users.mail_user:
            lines.append("  chroot =")
        # The built-in listeners (143 / 993, 110 / 995) are off; ours follow, one per address.
        for default in (protocol, f"{protocol}s"):
            lines += [f"  inet_listener {default} {{", "    port = 0", "  }"]
        for number, item in enumerate(mine, start=1):
            lines += [
                f"  inet_listener {protocol}{'s' if item.tls else ''}_{number} {{",
                f"    address = {item.host}",
                f"    port = {item.port}",
                f"    ssl = {'yes' if item.tls else 'no'}",
                "  }",
            ]
        lines.append("}")
    return "\n".join(line for line in lines if line) + "\n"
