"""``postroom imap|pop3 show|set``, ``mailbox-store show|set``, ``recipient password`` and the
mail-access options of ``recipient edit``: output, exit codes, refusals that change nothing."""

from __future__ import annotations

import io
import json
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import settings
from app.cli import main
from app.directory import recipients
from app.directory.passwords import verify_password
from app.mailstore import maildir
from app.store import Store
from app.store import directory as directory_rows
from tests.smtp_support import PASSWORD, Smtp, organisation, start, tls_client
from tests.test_cli import postroom


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    yield Cli(capsys, data_dir, monkeypatch)


class Cli:
    """``postroom`` run in this process against the test's data directory."""

    def __init__(
        self, capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.capsys, self.data_dir, self.monkeypatch = capsys, data_dir, monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        status = main(["--data-dir", str(self.data_dir), *args])
        out, err = self.capsys.readouterr()
        return status, out, err


def put_mail(store: Store, alias: str, size: int) -> None:
    box = maildir.ensure(store.paths.mailbox(alias))
    (box / "cur" / f"1700000000.M1P1.host,S={size}:2,S").write_bytes(b"x" * size)


# -- imap / pop3 ----------------------------------------------------------------------------------


def test_imap_and_pop3_show_their_own_settings(cli: Cli) -> None:
    status, out, _ = cli("imap", "show")
    assert status == 0
    assert "imap_listen        127.0.0.1:1143" in out and "pop3" not in out
    status, out, _ = cli("pop3", "show", "--json")
    assert status == 0
    assert json.loads(out) == {
        "pop3_enabled": True,
        "pop3_listen": ["127.0.0.1:1110"],
        "pop3s_listen": [],
        "pop3_tls_required": False,
    }


def test_imap_set_stores_listeners_and_switches(cli: Cli, store: Store) -> None:
    status, out, _ = cli("imap", "set", "imap_listen", "127.0.0.1:1144, [::1]:1145")
    assert status == 0 and out.startswith("imap_listen = 127.0.0.1:1144, [::1]:1145 (")
    assert cli("imap", "set", "imaps_listen", "0.0.0.0:993")[0] == 0
    assert cli("pop3", "set", "pop3_tls_required", "on")[0] == 0
    status, out, _ = cli("pop3", "set", "pop3_enabled", "off", "--json")
    assert (status, json.loads(out)) == (0, {"pop3_enabled": False})
    current = settings.load_settings(store)
    assert current.imap_listen == ["127.0.0.1:1144", "[::1]:1145"]
    assert current.imaps_listen == ["0.0.0.0:993"]
    assert (current.pop3_tls_required, current.pop3_enabled) == (True, False)
    assert cli("imap", "set", "imaps_listen", "off")[0] == 0
    assert settings.load_settings(store).imaps_listen == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("imap", "set", "pop3_listen", "127.0.0.1:1110"),
            "'pop3_listen' is not an IMAP4 setting; it is a POP3 one: postroom pop3 set.",
        ),
        (
            ("pop3", "set", "listen", "127.0.0.1:25"),
            "'listen' is not a POP3 setting; use one of pop3_enabled, pop3_listen, "
            "pop3s_listen, pop3_tls_required.",
        ),
        (
            ("imap", "set", "imap_listen", "nowhere:port"),
            "imap_listen: 'nowhere:port' is not a listen address. Write HOST:PORT, e.g. "
            "127.0.0.1:1143, or off for none.",
        ),
        (("imap", "set", "imap_tls_required", "maybe"), "imap_tls_required: "),
        (
            ("imap", "set", "imap_listen", "off"),
            "IMAP is on but has no listen address: set imap_listen (or imaps_listen), or turn "
            "it off with imap_enabled off.",
        ),
    ],
)
def test_imap_pop3_set_refusals_change_nothing(
    cli: Cli, store: Store, args: tuple[str, ...], message: str
) -> None:
    before = settings.load_settings(store).as_dict()
    status, out, err = cli(*args)
    assert (status, out) == (1, "")
    assert err.startswith(f"postroom: {message}") and err.count("\n") == 1
    assert settings.load_settings(store).as_dict() == before


def test_imap_without_an_action_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("imap")
    assert exited.value.code == 2


# -- mailbox-store --------------------------------------------------------------------------------


def test_mailbox_store_sets_defaults_and_shows_each_mailbox_against_its_limits(
    cli: Cli, store: Store
) -> None:
    recipients.create_recipient(store, "amy")
    recipients.create_recipient(store, "ben")
    recipients.edit_recipient(store, "ben", quota_warn=1, quota_prohibit=0)
    put_mail(store, "amy", 3000)
    put_mail(store, "ben", 1500)
    status, out, _ = cli("mailbox-store", "set", "mailbox_prohibit_default", "2")
    assert (status, out.split(" (")[0]) == (0, "mailbox_prohibit_default = 2 KB")
    assert cli("mailbox-store", "set", "mailbox_warn_default", "none")[0] == 0
    assert cli("mailbox-store", "set", "mailbox_full_permanent", "on")[0] == 0
    status, out, _ = cli("mailbox-store", "show", "--json")
    shown = json.loads(out)
    assert shown["settings"] == {
        "mailbox_warn_default": 0,
        "mailbox_prohibit_default": 2,
        "mailbox_full_permanent": True,
    }
    by_alias = {m["alias"]: m for m in shown["mailboxes"]}
    assert by_alias["amy"] == {
        "alias": "amy",
        "size": 3000,
        "warn_kib": 0,
        "prohibit_kib": 2,
        "store_defaults": True,
        "state": "prohibited",
    }
    assert (by_alias["ben"]["state"], by_alias["ben"]["store_defaults"]) == ("warning", False)
    status, out, _ = cli("mailbox-store", "show")
    amy = next(line for line in out.splitlines() if line.startswith("amy "))
    assert amy.split() == [
        "amy", "3", "KB", "none", "2", "KB", "store", "defaults", "full:", "mail", "to", "it",
        "is", "refused",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mailbox_prohibit_default", "-1", "mailbox_prohibit_default: "),
        ("mailbox_warn_default", "lots", "mailbox_warn_default: "),
        (
            "mailbox_warn_default",
            "20",
            "The default warning limit (20 KiB) is above the default prohibit limit (10 KiB)",
        ),
        ("listen", "127.0.0.1:25", "'listen' is not a Mailbox Store setting; use one of"),
    ],
)
def test_mailbox_store_refusals_change_nothing(
    cli: Cli, store: Store, key: str, value: str, message: str
) -> None:
    settings.save_settings(store, mailbox_prohibit_default=10)
    before = settings.load_settings(store).as_dict()
    status, out, err = cli("mailbox-store", "set", key, value)
    assert (status, out) == (1, "")
    assert err.startswith(f"postroom: {message}") and err.count("\n") == 1
    assert settings.load_settings(store).as_dict() == before


# -- recipient edit -------------------------------------------------------------------------------


def test_recipient_edit_sets_protocols_and_limits_and_default_resets_them(
    cli: Cli, store: Store
) -> None:
    recipients.create_recipient(store, "amy")
    status, out, err = cli(
        "recipient", "edit", "amy", "--imap", "off", "--pop3", "off",
        "--quota-warn", "1000", "--quota-prohibit", "2,000", "--json",
    )  # fmt: skip
    assert (status, err) == (0, "")
    shown = json.loads(out)
    assert (shown["imap_enabled"], shown["pop3_enabled"]) == (False, False)
    assert (shown["quota_warn"], shown["quota_prohibit"]) == (1000, 2000)
    status, out, _ = cli("recipient", "show", "amy")
    assert "IMAP4:        off" in out and "Prohibit at:  2,000 KB" in out
    assert cli("recipient", "edit", "amy", "--imap", "on", "--quota-warn", "default")[0] == 0
    amy = recipients.get_recipient(store, "amy")
    assert (amy.imap_enabled, amy.pop3_enabled) == (True, False)
    assert (amy.quota_warn, amy.quota_prohibit) == (None, 2000)
    status, out, _ = cli("recipient", "show", "amy")
    assert "Warning at:   the Mailbox Store's default" in out


def test_a_limit_below_the_mailbox_size_is_kept_with_a_one_line_warning(
    cli: Cli, store: Store
) -> None:
    recipients.create_recipient(store, "amy")
    put_mail(store, "amy", 5000)
    status, out, err = cli("recipient", "edit", "amy", "--quota-prohibit", "2")
    assert (status, out) == (0, "Saved 'amy'.\n")
    assert err == (
        "postroom: warning: the mailbox of 'amy' already holds 5 KB, over its prohibit limit of "
        "2 KB: mail to it is refused until it is emptied.\n"
    )
    assert recipients.get_recipient(store, "amy").quota_prohibit == 2
    status, _, err = cli("recipient", "edit", "amy", "--quota-prohibit", "0", "--quota-warn", "4")
    assert status == 0 and "over its warning limit of 4 KB." in err
    # Under both limits: no warning.
    assert cli("recipient", "edit", "amy", "--quota-warn", "10")[2] == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--quota-warn", "lots"), "--quota-warn 'lots' is not a number of KB"),
        (("--quota-prohibit", "-1"), "The prohibit limit -1 KiB is out of range"),
        (("--quota-prohibit", str(2**32 + 1)), "The prohibit limit 4294967297 KiB is out of"),
        (
            ("--quota-warn", "300", "--quota-prohibit", "200"),
            "The warning limit (300 KiB) is above the prohibit limit (200 KiB)",
        ),
        (("--imap", "off", "--quota-warn", "oops"), "--quota-warn 'oops' is not a number"),
    ],
)
def test_recipient_edit_refusals_change_nothing(
    cli: Cli, store: Store, args: tuple[str, ...], message: str
) -> None:
    recipients.create_recipient(store, "amy")
    before = recipients.get_recipient(store, "amy")
    status, out, err = cli("recipient", "edit", "amy", *args)
    assert (status, out) == (1, "")
    assert err.startswith(f"postroom: {message}") and err.count("\n") == 1
    assert recipients.get_recipient(store, "amy") == before


def test_protocols_and_limits_are_a_users_only(cli: Cli, store: Store) -> None:
    recipients.create_recipient(store, "team", "group")
    before = recipients.get_recipient(store, "team")
    status, _, err = cli("recipient", "edit", "team", "--pop3", "off")
    assert status == 1 and "Only a user has a mailbox" in err
    assert recipients.get_recipient(store, "team") == before


def test_recipient_edit_bad_switch_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("recipient", "edit", "amy", "--imap", "maybe")
    assert exited.value.code == 2


# -- recipient password ---------------------------------------------------------------------------


@pytest.fixture
def smtp(store: Store) -> Iterator[Smtp]:
    organisation(store)
    running = start(store)
    yield running
    running.service.stop()


def auth(smtp: Smtp, login: str, password: str) -> int:
    with tls_client(smtp) as client:
        try:
            return client.login(login, password)[0]
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code


def test_recipient_password_from_stdin_takes_effect_for_smtp_auth_at_once(
    cli: Cli, smtp: Smtp
) -> None:
    assert auth(smtp, "jsmith@example.com", PASSWORD) == 235
    status, out, err = cli("recipient", "password", "jsmith", stdin="new secret words\n")
    assert (status, err) == (0, "")
    assert out.startswith("Set the password of 'jsmith'")
    assert auth(smtp, "jsmith@example.com", "new secret words") == 235
    assert auth(smtp, "jsmith", "new secret words") == 235
    assert auth(smtp, "jsmith@example.com", PASSWORD) == 535


def test_recipient_password_through_a_pipe(data_dir: Path, store: Store) -> None:
    recipients.create_recipient(store, "amy")
    done = postroom(data_dir, "recipient", "password", "amy", "--json", stdin="")
    assert done.returncode == 1 and "No password was read" in done.stderr
    assert not recipients.get_recipient(store, "amy").has_password
    done = postroom(data_dir, "recipient", "password", "amy", "--json", stdin="pw 1\r\n")
    assert done.returncode == 0 and json.loads(done.stdout)["has_password"] is True
    with store.read() as conn:
        stored = directory_rows.password_hash(conn, "amy")
    assert verify_password("pw 1", stored) and not verify_password("pw 1\r", stored)


@pytest.mark.parametrize(
    ("alias", "stdin", "message"),
    [
        ("amy", "", "No password was read from standard input"),
        ("amy", "\n", "No password was read from standard input"),
        ("amy", "x" * 1025 + "\n", "The password is longer than 1024 bytes."),
        ("amy", "a\0b\n", "The password has a NUL character"),
        ("team", "secret\n", "'team' is a group: only a user has a password."),
        ("nobody", "secret\n", "There is no recipient with the alias 'nobody'."),
    ],
)
def test_recipient_password_refusals_keep_the_old_one(
    cli: Cli, store: Store, alias: str, stdin: str, message: str
) -> None:
    recipients.create_recipient(store, "amy", password="old one")
    recipients.create_recipient(store, "team", "group")
    before = hashes(store)
    status, out, err = cli("recipient", "password", alias, stdin=stdin)
    assert (status, out) == (1, "")
    assert err.startswith(f"postroom: {message}") and err.count("\n") == 1
    assert hashes(store) == before
    assert verify_password("old one", hashes(store)[0])


def hashes(store: Store) -> tuple[str | None, str | None]:
    with store.read() as conn:
        return directory_rows.password_hash(conn, "amy"), directory_rows.password_hash(conn, "team")
