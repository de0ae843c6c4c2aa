"""rspamd's private configuration under ``<data>/rspamd/``, written from the settings at start."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from app.dkim.signing import rspamd_dkim_signing_conf
from app.paths import DataPaths
from app.settings import Settings
from app.store import Store

log = logging.getLogger(__name__)

# Debian's rspamd keeps its stock configuration here; ours includes it and overrides parts.
STOCK_CONFDIR = Path("/etc/rspamd")

# Modules that reach servers on the internet (HTTP maps, public fuzzy storage, update checks,
# DNS lists and reputation zones) or need Redis: off, so nothing leaves the machine unasked.
_DISABLED = (
    "fuzzy_check",
    "phishing",
    "rbl",
    "surbl",
    "emails",
    "asn",
    "url_redirector",
    "rspamd_update",
    "whitelist",
    "mx_check",
    "dcc",
    "antivirus",
    "external_services",
    "clickhouse",
    "elastic",
    "metadata_exporter",
    "neural",
    "reputation",
    "greylist",
    "ratelimit",
    "history_redis",
    "multimap",  # its stock rules fetch freemail lists over HTTPS
    "mime_types",  # fetches its extension map over HTTPS
    "mid",  # fetches its Message-ID map over HTTPS
)

_HEADER = "# Written by Postroom from its settings at every start; edits are lost.\n"


@dataclass(frozen=True)
class RspamdFolders:
    """Where one Postroom's rspamd keeps its configuration, database, pid and log."""

    root: Path

    @property
    def main_conf(self) -> Path:
        return self.root / "rspamd.conf"

    @property
    def local_d(self) -> Path:
        return self.root / "local.d"

    @property
    def override_d(self) -> Path:
        return self.root / "override.d"

    @property
    def db(self) -> Path:
        return self.root / "db"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "rspamd.log"

    @property
    def port_file(self) -> Path:
        """The port the normal worker was given at the last start (for tools and tests)."""
        return self.run / "normal.port"

    def variables(self) -> list[str]:
        """rspamd's ``--var`` arguments that point its stock configuration at these folders."""
        return [
            f"--var=CONFDIR={STOCK_CONFDIR}",
            f"--var=LOCAL_CONFDIR={self.root}",
            f"--var=DBDIR={self.db}",
            f"--var=RUNDIR={self.run}",
            f"--var=LOGDIR={self.log_dir}",
        ]


def folders(paths: DataPaths) -> RspamdFolders:
    return RspamdFolders(paths.rspamd)


def _ucl(text: str) -> str:
    """A UCL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ucl_list(items: list[str]) -> str:
    return "[" + ", ".join(_ucl(item) for item in items) + "]"


def main_conf(port: int) -> str:
    """The top file: the stock common part, our logging and one normal worker on loopback; no
    controller, proxy or fuzzy storage."""
    return (
        _HEADER + '.include "$CONFDIR/common.conf"\n'
        "options {\n"
        '    pidfile = "$RUNDIR/rspamd.pid";\n'
        '    .include "$CONFDIR/options.inc"\n'
        '    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"\n'
        "}\n"
        "logging {\n"
        '    type = "file";\n'
        '    filename = "$LOGDIR/rspamd.log";\n'
        '    level = "info";\n'
        "}\n"
        'worker "normal" {\n'
        f'    bind_socket = "127.0.0.1:{port}";\n'
        '    .include "$CONFDIR/worker-normal.inc"\n'
        "}\n"
    )


def local_files(settings: Settings, signing: str) -> dict[str, str]:
    """Every file of ``local.d/`` and ``override.d/`` by its path under the rspamd folder."""
    files: dict[str, str] = {}
    options = ["dns {", "    timeout = 2s;", "    retransmits = 2;"]
    if settings.nameservers:
        options.append(f"    nameserver = {_ucl_list(settings.nameservers)};")
    options.append("}")
    # Relay computers are this site's own (their mail is signed, not scored).
    options.append(f"local_addrs = {_ucl_list(settings.relay_ips)};")
    files["local.d/options.inc"] = "\n".join(options) + "\n"
    files["local.d/actions.conf"] = (
        f"reject = {settings.filter_reject_score:g};\n"
        f"add_header = {settings.filter_junk_score:g};\n"
        "rewrite_subject = null;\n"
        "greylist = null;\n"
    )
    # Loopback clients are checked too: Postroom itself passes what it does not want scored.
    files["local.d/spf.conf"] = "check_local = true;\ncheck_authed = false;\n"
    files["local.d/dkim.conf"] = "check_local = true;\ncheck_authed = false;\n"
    reject = "reject" if settings.dmarc_reject else "add header"
    files["local.d/dmarc.conf"] = (
        "check_local = true;\ncheck_authed = false;\n"
        f'actions {{\n    reject = "{reject}";\n    quarantine = "add header";\n}}\n'
    )
    files["local.d/milter_headers.conf"] = (
        'use = ["authentication-results"];\n'
        "skip_local = false;\n"
        "skip_authenticated = true;\n"
        "routines {\n"
        "    authentication-results {\n"
        '        header = "Authentication-Results";\n'
        "        remove = false;\n"  # Postroom removes only those with its own authserv-id
        "        add_smtp_user = false;\n"
        "    }\n"
        "}\n"
    )
    for module in _DISABLED:
        files[f"local.d/{module}.conf"] = "enabled = false;\n"
    if settings.filter_dnsbl:
        files["local.d/rbl.conf"] = "enabled = true;\n"
        rules = []
        scores = []
        for number, zone in enumerate(settings.filter_dnsbl, 1):
            symbol = f"POSTROOM_DNSBL_{number}"
            rules.append(
                f"    postroom_{number} {{\n"
                f"        symbol = {_ucl(symbol)};\n"
                f"        rbl = {_ucl(zone)};\n"
                "        ipv4 = true;\n        ipv6 = true;\n        received = false;\n"
                "    }"
            )
            scores.append(
                f"        {symbol} {{\n            weight = {settings.filter_junk_score:g};\n"
                f"            description = {_ucl('Client listed in ' + zone)};\n        }}"
            )
        files["override.d/rbl.conf"] = "url_whitelist = [];\nrbls {\n" + "\n".join(rules) + "\n}\n"
        files["local.d/groups.conf"] = (
            'group "postroom_dnsbl" {\n    symbols {\n' + "\n".join(scores) + "\n    }\n}\n"
        )
    if signing:
        files["local.d/dkim_signing.conf"] = signing
    return files


def signing_conf(store: Store) -> str:
    """rspamd's DKIM signing configuration for the hosted domains' keys."""
    return rspamd_dkim_signing_conf(store)


def write(where: RspamdFolders, settings: Settings, port: int, signing: str) -> None:
    """Write the whole configuration afresh (files from an older start are removed)."""
    for folder in (where.root, where.local_d, where.override_d, where.db, where.run):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    where.log_dir.mkdir(mode=0o700, exist_ok=True)
    for folder in (where.local_d, where.override_d):
        for old in folder.iterdir():
            if old.is_file():
                old.unlink()
    _write_file(where.main_conf, main_conf(port))
    for relative, text in local_files(settings, signing).items():
        _write_file(where.root / relative, text)
    _write_file(where.port_file, f"{port}\n")


def _write_file(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
