"""SMTP connectors: every bad input refused with one line and nothing changed, the database's own
rules, the password never shown, relay domains at RCPT over a real SMTP service, and the CLI."""

from __future__ import annotations

import json
import os
import smtplib
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app import connectors, policies
from app.cli import main
from app.errors import ConflictError, NotFoundError, PostroomError
from app.model import AddressSpace, SmartHost, SmtpConnector
from app.queue import spool
from app.settings import save_settings
from app.smtp.service import SmtpService
from app.store import ConstraintError, Store
from app.store import connectors as rows
from tests.conftest import ROOT

PASSWORD = "relay-secret-4711"


def connector(name: str = "Partners", **fields: object) -> SmtpConnector:
    values: dict[str, object] = {"address_spaces": (AddressSpace("partner.example"),)}
    values.update(fields)
    return SmtpConnector(name, **values)  # type: ignore[arg-type]


def snapshot(store: Store) -> tuple[int, list[SmtpConnector]]:
    """What a refused request must leave alone: the change counter and every connector."""
    return store.change_counter(), connectors.list_connectors(store)


# --- the engine: good input ----------------------------------------------------------------------


def test_a_connector_is_stored_normalised_and_read_back(store: Store) -> None:
    created = connectors.create_connector(
        store,
        SmtpConnector(
            "  To Partners ",
            address_spaces=(
                connectors.parse_address_space("*.Bücher.Example:5"),
                connectors.parse_address_space("PARTNER.example."),
            ),
            use_dns=False,
            smart_hosts=(
                connectors.parse_smart_host("Relay.Partner.Example:587"),
                connectors.parse_smart_host("[IPv6:2001:DB8::25]:2525"),
                connectors.parse_smart_host("[192.0.2.25]"),
            ),
            tls="required",
            auth_user="bob",
            password=PASSWORD,
            note=" the partners' relay ",
        ),
    )
    assert created.name == "To Partners" and created.note == "the partners' relay"
    assert created.address_spaces == (
        AddressSpace("*.xn--bcher-kva.example", 5),
        AddressSpace("partner.example", 1),
    )
    assert created.smart_hosts == (
        SmartHost("relay.partner.example", 587),
        SmartHost("[2001:db8::25]", 2525),
        SmartHost("[192.0.2.25]", None),
    )
    assert created.created and created.created == created.modified
    assert connectors.get_connector(store, "to partners") == created
    assert connectors.display_pattern("*.xn--bcher-kva.example") == "*.bücher.example"
    assert PASSWORD not in repr(created)


def test_saving_changes_modified_only_when_something_changed(store: Store) -> None:
    created = connectors.create_connector(store, connector())
    counter = store.change_counter()
    assert connectors.save_connector(store, created) == created
    assert store.change_counter() == counter
    edited = connectors.save_connector(store, replace(created, relay=True, created="", modified=""))
    assert edited.relay and edited.created == created.created
    assert edited.modified >= created.modified
    assert connectors.list_connectors(store) == [edited]


def test_delete_refuses_while_mail_is_queued_unless_forced(store: Store) -> None:
    connectors.create_connector(store, connector())
    before = snapshot(store)
    with pytest.raises(ConflictError) as refused:
        connectors.delete_connector(store, "partners", queued_messages=3)
    assert str(refused.value) == (
        "3 messages are queued for the SMTP connector 'Partners'. Let the queue empty or delete "
        "its messages first (postroom queue), or delete the connector anyway with --force."
    )
    assert snapshot(store) == before
    with pytest.raises(ConflictError, match="^1 message is queued"):
        connectors.delete_connector(store, "Partners", queued_messages=1)
    assert connectors.delete_connector(store, "Partners", queued_messages=3, force=True).name == (
        "Partners"
    )
    assert connectors.list_connectors(store) == []
    with pytest.raises(NotFoundError, match="no SMTP connector named 'Partners'"):
        connectors.delete_connector(store, "Partners", queued_messages=0)


# --- the engine: bad input -----------------------------------------------------------------------

BAD = [
    # A smart host that is not a host name or a bracketed IP.
    (
        {"use_dns": False, "smart_hosts": (SmartHost("relay"),)},
        "The smart host 'relay' is not a full host name.",
    ),
    (
        {"use_dns": False, "smart_hosts": (SmartHost("relay_1.partner.example"),)},
        "The smart host 'relay_1.partner.example' is not a full host name.",
    ),
    (
        {"use_dns": False, "smart_hosts": (SmartHost("192.0.2.25"),)},
        "The smart host '192.0.2.25' is an IP address: write it in brackets, [192.0.2.25]",
    ),
    (
        {"use_dns": False, "smart_hosts": (SmartHost("[relay.partner.example]"),)},
        "The smart host '[relay.partner.example]' is not an IP address in brackets.",
    ),
    # A port out of range.
    (
        {"use_dns": False, "smart_hosts": (SmartHost("relay.partner.example", 0),)},
        "The port 0 of the smart host 'relay.partner.example' is out of range: use 1 to 65535.",
    ),
    (
        {"use_dns": False, "smart_hosts": (SmartHost("[192.0.2.25]", 65536),)},
        "The port 65536 of the smart host '[192.0.2.25]' is out of range: use 1 to 65535.",
    ),
    # An address space that is not a domain pattern.
    (
        {"address_spaces": (AddressSpace("partner.*.example"),)},
        "The address space 'partner.*.example' is not a domain pattern: '*' may stand alone",
    ),
    (
        {"address_spaces": (AddressSpace("partner..example"),)},
        "The address space 'partner..example' is not a domain pattern.",
    ),
    (
        {"address_spaces": (AddressSpace("192.0.2.1"),)},
        "The address space '192.0.2.1' is an IP address, not a domain pattern.",
    ),
    (
        {"address_spaces": (AddressSpace("partner.example", 1, "X400"),)},
        "The address space type 'X400' is not supported",
    ),
    # A cost outside 1-100.
    (
        {"address_spaces": (AddressSpace("partner.example", 0),)},
        "The cost 0 of the address space 'partner.example' is out of range: use 1 (preferred)",
    ),
    (
        {"address_spaces": (AddressSpace("partner.example", 101),)},
        "The cost 101 of the address space 'partner.example' is out of range",
    ),
    # A connector without address space, or with one twice.
    ({"address_spaces": ()}, "The connector 'Partners' has no address space: add at least one"),
    (
        {"address_spaces": (AddressSpace("partner.example"), AddressSpace("PARTNER.example", 5))},
        "The address space 'partner.example' is on the connector 'Partners' twice",
    ),
    # Smart hosts together with DNS; smart hosts without any.
    (
        {"use_dns": True, "smart_hosts": (SmartHost("relay.partner.example"),)},
        "The connector 'Partners' cannot use DNS and smart hosts together",
    ),
    ({"use_dns": False}, "The connector 'Partners' forwards to smart hosts but names none"),
    # Relaying to every domain is an open relay (the Exchange trap, refused here).
    (
        {"relay": True, "address_spaces": (AddressSpace("*", 10),)},
        "The connector 'Partners' cannot allow relaying to '*'",
    ),
    # Basic authentication needs both halves.
    ({"auth_user": "bob"}, "Basic authentication for the connector 'Partners' needs a password"),
    ({"password": PASSWORD}, "The connector 'Partners' has a password but no user name"),
    ({"tls": "sometimes"}, "'sometimes' is not a TLS choice: use required or opportunistic."),
    ({"name": "  "}, "The connector name is empty."),
]


@pytest.mark.parametrize(("fields", "message"), BAD, ids=[message for _, message in BAD])
def test_bad_input_is_refused_and_nothing_changes(
    store: Store, fields: dict[str, object], message: str
) -> None:
    existing = connectors.create_connector(store, connector("Existing"))
    before = snapshot(store)
    with pytest.raises(PostroomError) as refused:
        connectors.create_connector(store, connector(**fields))
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    assert snapshot(store) == before
    # The same mistake made in an edit is refused the same way.
    edited = replace(existing, **{"name": "Partners", **fields})
    with pytest.raises(PostroomError) as refused_edit:
        connectors.save_connector(store, edited)
    assert str(refused_edit.value) == str(refused.value)
    assert snapshot(store) == before


def test_two_connectors_with_the_same_name_any_case(store: Store) -> None:
    connectors.create_connector(store, connector("Partners"))
    other = connectors.create_connector(store, connector("Others"))
    before = snapshot(store)
    with pytest.raises(ConflictError) as refused:
        connectors.create_connector(store, connector("PARTNERS"))
    assert str(refused.value) == (
        "An SMTP connector named 'PARTNERS' already exists. Choose another name."
    )
    with pytest.raises(ConflictError, match="named 'partners' already exists"):
        connectors.save_connector(store, replace(other, name="partners"))
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partner.example:x", "The cost 'x' of the address space 'partner.example:x' is not a"),
        ("partner.example:-5", "The cost -5 of the address space 'partner.example' is out of"),
        ("", "The address space is empty."),
        ("**", "The address space '**' is not a domain pattern: '*' may stand alone"),
    ],
)
def test_address_spaces_as_typed(text: str, message: str) -> None:
    with pytest.raises(PostroomError) as refused:
        connectors.parse_address_space(text)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("relay.partner.example:smtp", "The port 'smtp' of the smart host"),
        ("relay.partner.example:99999", "The port 99999 of the smart host"),
        ("[192.0.2.25", "The smart host '[192.0.2.25' is not a host name."),
        ("2001:db8::25", "The smart host '2001:db8::25' is an IP address: write it in brackets"),
        ("", "The smart host is empty."),
    ],
)
def test_smart_hosts_as_typed(text: str, message: str) -> None:
    with pytest.raises(PostroomError) as refused:
        connectors.parse_smart_host(text)
    assert str(refused.value).startswith(message)


def test_the_database_keeps_its_own_rules(store: Store) -> None:
    """Unique names in any case and costs of 1 to 100, even for a writer that skips the checks."""
    connectors.create_connector(store, connector())
    before = snapshot(store)
    for bad in (
        connector("PARTNERS", created="t", modified="t"),
        connector("Cheap", address_spaces=(AddressSpace("partner.example", 0),)),
        connector("Dear", address_spaces=(AddressSpace("partner.example", 101),)),
        connector("Half", auth_user="bob"),
    ):
        with pytest.raises(ConstraintError), store.write() as conn:
            rows.insert_connector(conn, bad)
    assert snapshot(store) == before


# --- the password --------------------------------------------------------------------------------


def test_the_password_is_never_shown_and_the_database_stays_private(
    capsys: pytest.CaptureFixture[str], store: Store, data_dir: Path
) -> None:
    connectors.create_connector(
        store,
        connector(
            use_dns=False,
            smart_hosts=(SmartHost("relay.partner.example", 587),),
            auth_user="bob",
            password=PASSWORD,
        ),
    )
    outputs = []
    for args in (
        ["list"],
        ["list", "--json"],
        ["show", "Partners"],
        ["show", "Partners", "--json"],
    ):
        assert main(["--data-dir", str(data_dir), "connector", *args]) == 0
        outputs.append(capsys.readouterr())
    for out in outputs:
        assert PASSWORD not in out.out and PASSWORD not in out.err
    shown = json.loads(outputs[3].out)
    assert (shown["auth"], shown["auth_user"], shown["password"]) == ("basic", "bob", "set")
    assert "basic authentication as bob (password set)" in outputs[2].out
    for path in data_dir.glob("postroom.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# --- relay domains at RCPT, over a real SMTP service -------------------------------------------


@pytest.fixture
def service(store: Store, free_port: int) -> Iterator[SmtpService]:
    save_settings(store, listen=[f"127.0.0.1:{free_port}"], relay_ips=[], auth_relay=True)
    running = SmtpService(store, listen=[f"127.0.0.1:{free_port}"])
    running.start()
    yield running
    running.stop()


def rcpt(port: int, address: str) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        client.mail("sender@outside.test")
        code, text = client.rcpt(address)
    return code, text.decode()


def rcpt_once_reloaded(port: int, address: str, expected: int) -> tuple[int, str]:
    """RCPT until the service answers ``expected`` (it reloads its index within a second of a
    change), or the last answer after five seconds."""
    deadline = time.monotonic() + 5
    while True:
        answer = rcpt(port, address)
        if answer[0] == expected or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)  # polls the event (the reload), as qtbot.waitUntil does


def test_a_relay_domain_is_accepted_from_anyone_and_others_are_still_refused(
    store: Store, service: SmtpService, free_port: int
) -> None:
    assert rcpt(free_port, "anyone@partner.example")[:1] == (550,)
    connectors.create_connector(
        store,
        connector(
            address_spaces=(AddressSpace("partner.example"), AddressSpace("*.partner.example")),
            relay=True,
            use_dns=False,
            smart_hosts=(SmartHost("[192.0.2.25]", 25),),
        ),
    )
    connectors.create_connector(
        store,
        connector(
            "Private",
            address_spaces=(AddressSpace("private.partner.example"),),
            use_dns=False,
            smart_hosts=(SmartHost("[192.0.2.26]", 25),),
        ),
    )
    assert rcpt_once_reloaded(free_port, "anyone@partner.example", 250)[0] == 250
    assert rcpt(free_port, "x@sales.partner.example")[0] == 250

    # A connector without relay, unknown domains and relay tricks are still refused.
    for address in (
        "x@private.partner.example",
        "x@elsewhere.test",
        "x%elsewhere.test@partner.example",
    ):
        code, text = rcpt(free_port, address)
        assert (code, text) == (550, "5.7.1 Unable to relay"), address

    with smtplib.SMTP("127.0.0.1", free_port, timeout=10) as client:
        refused = client.sendmail(
            "sender@outside.test", ["anyone@partner.example"], b"Subject: hi\r\n\r\nrelayed\r\n"
        )
    assert refused == {}
    [queued] = spool.list_queue(store.paths.queue)
    assert queued.recipients == ("anyone@partner.example",)


def test_a_relay_connector_pointing_back_here_is_a_loop(
    store: Store, service: SmtpService, free_port: int
) -> None:
    connectors.create_connector(
        store,
        connector(
            relay=True,
            use_dns=False,
            smart_hosts=(SmartHost("[127.0.0.1]", free_port),),
        ),
    )
    code, text = rcpt_once_reloaded(free_port, "anyone@partner.example", 554)
    assert (code, text) == (
        554,
        "5.4.6 <anyone@partner.example>: Routing loop: the route for this domain points back here",
    )
    assert spool.list_queue(store.paths.queue) == []


def test_a_shared_domain_routed_by_a_connector_back_here_is_a_loop(
    store: Store, service: SmtpService, free_port: int
) -> None:
    policies.create_policy(store, "Partners", "(company=Partner)")
    policies.add_rule(store, "Partners", "@partner.example", responsible=False)
    # The smart host setting is elsewhere, but the connector decides for its address space.
    save_settings(store, smart_host="relay.isp.example:25", fqdn="mx.example.test")
    connectors.create_connector(
        store,
        connector(use_dns=False, smart_hosts=(SmartHost("MX.example.test", free_port),)),
    )
    code, text = rcpt_once_reloaded(free_port, "unknown@partner.example", 554)
    assert (code, text[:5]) == (554, "5.4.6")
    assert rcpt(free_port, "unknown@other.example")[0] == 550  # not shared, not a relay domain


# --- the command line ---------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    status = main(["--data-dir", str(data_dir), "connector", *args])
    out, err = capsys.readouterr()
    return status, out, err


def postroom(
    data_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTROOM_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "app", "connector", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_connector_commands_end_to_end(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    created = postroom(
        data_dir,
        "new",
        "Partners",
        "--address-space",
        "partner.example",
        "--address-space",
        "*.bücher.example:5",
        "--relay",
        "on",
        "--smart-host",
        "relay.partner.example:587",
        "--smart-host",
        "[192.0.2.25]",
        "--tls",
        "required",
        "--auth-user",
        "bob",
        "--password-stdin",
        "--note",
        "the partners' relay",
        "--json",
        stdin=f"{PASSWORD}\n",
    )
    assert created.returncode == 0, created.stderr
    assert PASSWORD not in created.stdout
    shown = json.loads(created.stdout)
    assert shown == {
        "name": "Partners",
        "address_spaces": [
            {
                "type": "SMTP",
                "pattern": "partner.example",
                "display_pattern": "partner.example",
                "cost": 1,
            },
            {
                "type": "SMTP",
                "pattern": "*.xn--bcher-kva.example",
                "display_pattern": "*.bücher.example",
                "cost": 5,
            },
        ],
        "relay": True,
        "route": "smart hosts",
        "smart_hosts": ["relay.partner.example:587", "[192.0.2.25]"],
        "tls": "required",
        "auth": "basic",
        "auth_user": "bob",
        "password": "set",
        "note": "the partners' relay",
        "created": shown["created"],
        "modified": shown["created"],
    }

    status, out, _ = run(capsys, data_dir, "new", "Everything", "--address-space", "*:50")
    assert status == 0 and out == "Created SMTP connector 'Everything'.\n"
    status, out, _ = run(capsys, data_dir, "list")
    assert status == 0
    assert out.splitlines()[0].split() == [
        "Name",
        "Address",
        "spaces",
        "(cost)",
        "Route",
        "Relay",
        "Last",
        "Modified",
    ]
    assert "partner.example (1), *.bücher.example (5)" in out and "* (50)" in out

    # Edit: back to DNS and anonymous; the lists given replace the old ones.
    status, out, _ = run(
        capsys,
        data_dir,
        "edit",
        "partners",
        "--dns",
        "--anonymous",
        "--relay",
        "off",
        "--address-space",
        "partner.example:3",
        "--rename",
        "Partner Mail",
        "--json",
    )
    assert status == 0
    edited = json.loads(out)
    assert (edited["name"], edited["route"], edited["smart_hosts"]) == ("Partner Mail", "dns", [])
    assert (edited["auth"], edited["password"], edited["relay"]) == ("anonymous", None, False)
    assert edited["address_spaces"][0]["cost"] == 3 and len(edited["address_spaces"]) == 1
    status, out, _ = run(capsys, data_dir, "show", "Partner Mail")
    assert "Route:           DNS" in out and "Authentication:  anonymous" in out

    status, out, _ = run(capsys, data_dir, "delete", "Partner Mail", "--json")
    assert (status, json.loads(out)) == (0, {"deleted": "Partner Mail"})
    status, out, _ = run(capsys, data_dir, "list", "--json")
    assert [c["name"] for c in json.loads(out)] == ["Everything"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new", "X", "--address-space", "partner.example", "--smart-host", "relay"], "'relay'"),
        (["new", "X", "--address-space", "partner.example", "--smart-host", "r.example:0"], "0"),
        (["new", "X", "--address-space", "part ner.example"], "is not a domain pattern"),
        (["new", "X", "--address-space", "partner.example:101"], "cost 101"),
        (["new", "X"], "has no address space"),
        (["new", "existing", "--address-space", "partner.example"], "already exists"),
        (
            ["new", "X", "--address-space", "p.example", "--dns", "--smart-host", "r.example"],
            "cannot use DNS and smart hosts together",
        ),
        (["new", "X", "--address-space", "*", "--relay", "on"], "an open relay"),
        (["new", "X", "--address-space", "p.example", "--auth-user", "bob"], "needs a password"),
        (["edit", "Existing", "--anonymous", "--auth-user", "bob"], "either --anonymous"),
        (["edit", "Existing", "--address-space", "p.example:0"], "cost 0"),
        (["show", "Nope"], "no SMTP connector named 'Nope'"),
        (["delete", "Nope"], "no SMTP connector named 'Nope'"),
    ],
)
def test_refusals_exit_1_with_one_line_and_change_nothing(
    capsys: pytest.CaptureFixture[str], data_dir: Path, args: list[str], message: str
) -> None:
    assert run(capsys, data_dir, "new", "Existing", "--address-space", "existing.example")[0] == 0
    before = run(capsys, data_dir, "list", "--json")[1]
    status, out, err = run(capsys, data_dir, *args)
    assert (status, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("postroom: ") and message in lines[0]
    assert run(capsys, data_dir, "list", "--json")[1] == before


def test_a_password_from_stdin_must_not_be_empty(data_dir: Path) -> None:
    result = postroom(
        data_dir, "new", "X", "--address-space", "p.example", "--auth-user", "bob",
        "--password-stdin", stdin="\n",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == "postroom: No password was read from standard input.\n"
    assert json.loads(postroom(data_dir, "list", "--json").stdout) == []


def test_usage_errors_exit_2(data_dir: Path) -> None:
    assert postroom(data_dir).returncode == 2
    assert postroom(data_dir, "new").returncode == 2
    assert postroom(data_dir, "new", "X", "--tls", "sometimes").returncode == 2
    assert postroom(data_dir, "edit", "X", "--relay", "maybe").returncode == 2
