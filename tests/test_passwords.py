"""Password hashes (ARGON2ID, older scrypt ones re-hashed at login), the per-user IMAP4 / POP3
switches and mailbox limits, and the ``dovecot_users`` view Dovecot authenticates from."""

from __future__ import annotations

import base64
import hashlib
import shutil
import smtplib
import subprocess

import pytest

from app.directory import passwords, recipients
from app.errors import PostroomError
from app.settings import load_settings, save_settings
from app.store import Store
from app.store import directory as rows
from tests.smtp_support import Smtp, tls_client

SECRET = "correct horse battery staple"


def _scrypt(password: str) -> str:
    """A hash as Postroom wrote them before ARGON2ID (scrypt$N$r$p$salt$key)."""
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "$".join(
        [
            "scrypt",
            "16384",
            "8",
            "1",
            base64.b64encode(salt).decode(),
            base64.b64encode(key).decode(),
        ]
    )


def _user(store: Store, alias: str = "ann", password: str | None = SECRET) -> None:
    recipients.create_recipient(store, alias, password=password)
    recipients.add_address(store, alias, f"{alias}@example.com")
    recipients.add_address(store, alias, f"{alias.title()}.Other@example.net")


# -- hashes -------------------------------------------------------------------------------------


def test_new_hashes_are_argon2id_with_one_lane_and_verify() -> None:
    stored = passwords.hash_password(SECRET)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert SECRET not in stored
    assert passwords.verify_password(SECRET, stored)
    assert not passwords.verify_password(SECRET + "x", stored)
    assert not passwords.needs_rehash(stored)
    assert stored != passwords.hash_password(SECRET)  # salted


@pytest.mark.skipif(shutil.which("doveadm") is None, reason="needs Dovecot (./run installs it)")
def test_dovecot_verifies_the_hashes_postroom_writes() -> None:
    stored = "{ARGON2ID}" + passwords.hash_password(SECRET)
    good = subprocess.run(
        ["doveadm", "pw", "-t", stored, "-p", SECRET], capture_output=True, text=True, check=False
    )
    assert good.returncode == 0 and "(verified)" in good.stdout
    bad = subprocess.run(
        ["doveadm", "pw", "-t", stored, "-p", "wrong"], capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0 and "mismatch" in bad.stderr


def test_old_scrypt_hashes_verify_and_want_a_rehash() -> None:
    old = _scrypt(SECRET)
    assert passwords.verify_password(SECRET, old)
    assert not passwords.verify_password("wrong", old)
    assert passwords.needs_rehash(old)


@pytest.mark.parametrize(
    "stored", [None, "", "scrypt$x", "$argon2id$garbage", "{ARGON2ID}$argon2id$v=19$m=1$a$b", "x"]
)
def test_no_hash_or_a_malformed_one_never_verifies(stored: str | None) -> None:
    assert not passwords.verify_password(SECRET, stored)
    assert not passwords.verify_password("", stored)


def test_bad_passwords_are_refused_in_one_line() -> None:
    for password, words in (
        ("", "The password is empty"),
        ("x" * 1025, "longer than 1024 bytes"),
        ("é" * 513, "longer than 1024 bytes"),
        ("a\0b", "NUL"),
    ):
        with pytest.raises(PostroomError, match=words) as refused:
            passwords.hash_password(password)
        assert "\n" not in str(refused.value)
    assert passwords.verify_password("x" * 1024, passwords.hash_password("x" * 1024))


def test_an_overlong_password_never_matches_even_its_own_prefix() -> None:
    stored = passwords.hash_password("x" * 1024)
    assert not passwords.verify_password("x" * 1025, stored)


# -- re-hashing ---------------------------------------------------------------------------------


def _set_hash(store: Store, alias: str, stored: str | None) -> None:
    with store.write() as conn:
        recipient = rows.find_recipient(conn, alias)
        assert recipient is not None
        rows.set_password_hash(conn, int(recipient.id or 0), stored)


def _hash_of(store: Store, alias: str) -> str | None:
    with store.read() as conn:
        return rows.password_hash(conn, alias)


def test_rehash_replaces_scrypt_only_after_the_right_password(store: Store) -> None:
    _user(store)
    old = _scrypt(SECRET)
    _set_hash(store, "ann", old)
    assert not recipients.rehash_password(store, "ann", "wrong", old)
    assert _hash_of(store, "ann") == old
    assert recipients.rehash_password(store, "ann", SECRET, old)
    fresh = _hash_of(store, "ann")
    assert fresh is not None and fresh.startswith("$argon2id$")
    assert passwords.verify_password(SECRET, fresh)
    assert not recipients.rehash_password(store, "ann", SECRET, fresh)  # nothing to do


def test_rehash_loses_to_a_password_change_made_meanwhile(store: Store) -> None:
    _user(store)
    old = _scrypt(SECRET)
    _set_hash(store, "ann", old)
    recipients.set_password(store, "ann", "a newer password")
    assert not recipients.rehash_password(store, "ann", SECRET, old)
    assert passwords.verify_password("a newer password", _hash_of(store, "ann"))


def test_smtp_auth_accepts_an_old_scrypt_hash_and_rehashes_it(smtp: Smtp) -> None:
    old = _scrypt(SECRET)
    _set_hash(smtp.store, "jsmith", old)
    with tls_client(smtp) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        client.login("jsmith@example.com", "wrong")
    assert _hash_of(smtp.store, "jsmith") == old
    with tls_client(smtp) as client:
        code, _ = client.login("jsmith@example.com", SECRET)
        assert code == 235
    fresh = _hash_of(smtp.store, "jsmith")
    assert fresh is not None and fresh.startswith("$argon2id$")
    with tls_client(smtp) as client:
        assert client.login("jsmith", SECRET)[0] == 235


# -- protocols and mailbox limits ---------------------------------------------------------------


def test_a_new_user_has_both_protocols_and_the_store_default_limits(store: Store) -> None:
    _user(store)
    ann = recipients.get_recipient(store, "ann")
    assert (ann.imap_enabled, ann.pop3_enabled, ann.quota_warn, ann.quota_prohibit) == (
        True,
        True,
        None,
        None,
    )


def test_protocols_and_limits_are_kept_across_other_edits(store: Store) -> None:
    _user(store)
    recipients.edit_recipient(store, "ann", imap_enabled=False, quota_warn=900, quota_prohibit=1000)
    recipients.edit_recipient(store, "ann", attributes={"company": "Net"}, new_alias="anna")
    anna = recipients.get_recipient(store, "anna")
    assert (anna.imap_enabled, anna.pop3_enabled, anna.quota_warn, anna.quota_prohibit) == (
        False,
        True,
        900,
        1000,
    )
    recipients.edit_recipient(store, "anna", quota_prohibit=None, quota_warn=0)
    anna = recipients.get_recipient(store, "anna")
    assert (anna.quota_warn, anna.quota_prohibit) == (0, None)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"quota_warn": -1}, "out of range"),
        ({"quota_prohibit": 2**32 + 1}, "out of range"),
        ({"quota_prohibit": "100"}, "not a whole number"),
        ({"quota_prohibit": True}, "not a whole number"),
        ({"quota_warn": 2000, "quota_prohibit": 1000}, "above the prohibit limit"),
    ],
)
def test_bad_limits_are_refused_and_nothing_changes(
    store: Store, changes: dict[str, object], words: str
) -> None:
    _user(store)
    before = recipients.get_recipient(store, "ann")
    with pytest.raises(PostroomError, match=words) as refused:
        recipients.edit_recipient(store, "ann", imap_enabled=False, **changes)  # type: ignore[arg-type]
    assert "\n" not in str(refused.value)
    assert recipients.get_recipient(store, "ann") == before


def test_only_a_user_has_protocols_and_limits(store: Store) -> None:
    recipients.create_recipient(store, "team", "group")
    with pytest.raises(PostroomError, match="Only a user has a mailbox"):
        recipients.edit_recipient(store, "team", pop3_enabled=False)
    with pytest.raises(PostroomError, match="Only a user has a mailbox"):
        recipients.edit_recipient(store, "team", quota_prohibit=10)


def test_mail_settings_have_defaults_and_refuse_bad_values(store: Store) -> None:
    current = load_settings(store)
    assert current.imap_listen == ["127.0.0.1:1143"] and current.pop3_listen == ["127.0.0.1:1110"]
    assert current.imaps_listen == [] and current.pop3s_listen == []
    assert current.imap_enabled and current.pop3_enabled
    assert current.mailbox_warn_default == 0 and current.mailbox_prohibit_default == 0
    changed = save_settings(store, imaps_listen="0.0.0.0", pop3_listen="off", pop3s_listen="[::1]")
    assert changed.imaps_listen == ["0.0.0.0:993"] and changed.pop3_listen == []
    assert changed.pop3s_listen == ["[::1]:995"]
    for key, value, words in (
        ("imap_listen", "127.0.0.1:99999", "is not a listen address"),
        ("imap_enabled", "maybe", "is not on or off"),
        ("mailbox_prohibit_default", "-5", "out of range"),
        ("mailbox_warn_default", "lots", "is not a whole number"),
    ):
        with pytest.raises(PostroomError, match=words):
            save_settings(store, **{key: value})
    with pytest.raises(PostroomError, match="POP3 is on but has no listen address"):
        save_settings(store, pop3s_listen="")
    with pytest.raises(PostroomError, match="default warning limit"):
        save_settings(store, mailbox_warn_default=20, mailbox_prohibit_default=10)
    assert load_settings(store) == changed


# -- the view Dovecot reads ---------------------------------------------------------------------


def _login(store: Store, name: str) -> dict[str, object] | None:
    with store.read() as conn:
        return rows.dovecot_user(conn, name)


def test_the_view_has_a_row_per_address_and_the_alias(store: Store) -> None:
    _user(store)
    for name in ("ann", "ANN", "ann@example.com", "ann.other@example.net"):
        row = _login(store, name)
        assert row is not None, name
        assert row["user"] == "ann"
        assert str(row["password"]).startswith("{ARGON2ID}$argon2id$")
        assert (row["imap"], row["pop3"], row["quota_kib"], row["quota_rule"]) == (
            1,
            1,
            0,
            "*:ignore",
        )
    assert _login(store, "nobody@example.com") is None
    assert _login(store, "ann@example.org") is None


def test_the_view_leaves_out_groups_contacts_and_hashes_dovecot_cannot_check(
    store: Store,
) -> None:
    recipients.create_recipient(store, "team", "group")
    recipients.create_recipient(store, "partner", "contact", target="p@partner.test")
    assert _login(store, "team") is None and _login(store, "partner") is None
    _user(store, "nopass", password=None)
    assert _login(store, "nopass") == {**(_login(store, "nopass") or {}), "password": None}
    _user(store, "old")
    _set_hash(store, "old", _scrypt(SECRET))
    row = _login(store, "old")
    assert row is not None and row["password"] is None


def test_the_view_follows_switches_limits_and_store_defaults(store: Store) -> None:
    _user(store)
    recipients.edit_recipient(store, "ann", pop3_enabled=False)
    save_settings(store, mailbox_warn_default=800, mailbox_prohibit_default=1024)
    row = _login(store, "ann@example.com")
    assert row is not None
    assert (row["imap"], row["pop3"], row["quota_warn_kib"], row["quota_kib"]) == (1, 0, 800, 1024)
    assert row["quota_rule"] == "*:storage=1024K"
    recipients.edit_recipient(store, "ann", quota_prohibit=0, quota_warn=0)
    row = _login(store, "ann")
    assert row is not None and row["quota_rule"] == "*:ignore" and row["quota_warn_kib"] == 0
    recipients.edit_recipient(store, "ann", quota_prohibit=4096)
    row = _login(store, "ann")
    assert row is not None and row["quota_rule"] == "*:storage=4096K"
    recipients.delete_recipient(store, "ann")
    assert _login(store, "ann") is None and _login(store, "ann@example.com") is None
