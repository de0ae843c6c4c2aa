"""rspamd's DKIM signing configuration (``local.d/dkim_signing.conf``) for the stored keys."""

from __future__ import annotations

import logging

from app.dkim.catalog import DomainKeys, dkim_domains, prepare_keys, read_keys
from app.dkim.keys import DkimError
from app.settings import load_settings
from app.store import Store

log = logging.getLogger(__name__)

# Why each setting (rspamd 3.4's dkim_signing module, lualib/lua_dkim_tools.lua):
# - only authenticated submission and relay IPs are signed; loopback is not "local" here, so mail
#   arriving from outside (or from a test on 127.0.0.1) is never re-signed;
# - the header From domain picks the key, exactly (no eSLD: sub.example.org is its own domain);
# - a domain without a key here is not signed (no fallback path);
# - Postroom's submission already checks that the envelope sender and From are the user's own,
#   and logins need not be addresses, so rspamd's own From/login checks would only refuse mail
#   Postroom accepted on purpose;
# - the signature comes back among /checkv2's milter add_headers, which the SMTP service applies.
_GLOBAL = """\
# Written by Postroom from <data>/dkim/; rewritten at every start, do not edit.
enabled = true;
sign_authenticated = true;
sign_local = false;
sign_inbound = false;
use_domain = "header";
use_esld = false;
try_fallback = false;
use_redis = false;
check_pubkey = false;
use_milter_headers = true;
allow_envfrom_empty = true;
allow_hdrfrom_mismatch = true;
allow_hdrfrom_multiple = false;
allow_username_mismatch = true;
"""


def rspamd_dkim_signing_conf(store: Store) -> str:
    """The body of rspamd's ``local.d/dkim_signing.conf`` signing each hosted domain's mail.

    Makes keys for domains that have none yet; logs one warning per domain whose key file is
    damaged or gone (its mail then goes out unsigned, never held). rspamd must run as the user
    that owns the data directory: the keys are readable by their owner only.
    """
    settings = load_settings(store)
    try:
        domains = prepare_keys(store)
    except DkimError as error:
        # No new keys can be made: sign with the keys there are rather than not start.
        log.warning("DKIM: %s", error)
        domains = [read_keys(store, domain) for domain in dkim_domains(store)]
    for entry in domains:
        if entry.warning:
            log.warning("%s", entry.warning)
    return conf_text(domains, settings.relay_ips)


def conf_text(domains: list[DomainKeys], sign_networks: list[str]) -> str:
    """The configuration text for these keys; mail from ``sign_networks`` is signed too."""
    lines = [_GLOBAL.rstrip("\n")]
    if sign_networks:
        networks = ", ".join(_ucl_string(network) for network in sign_networks)
        lines.append(f"sign_networks = [{networks}];")
    lines.append("domain {")
    for entry in domains:
        key = entry.signing
        if key is None:
            continue
        lines += [
            f"  {_ucl_string(entry.domain)} {{",
            "    selectors [",
            f"      {{ path = {_ucl_string(str(key.path))}; "
            f"selector = {_ucl_string(key.selector)}; }}",
            "    ]",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _ucl_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
