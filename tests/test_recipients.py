"""The directory: users, contacts, groups, proxy addresses, and refusals."""

from __future__ import annotations

import stat

import pytest

from app.directory import recipients
from app.directory.passwords import verify_password
from app.errors import ConflictError, NotFoundError, PostroomError
from app.model import ProxyAddress
from app.store import Store
from app.store import directory as rows


def test_user_gets_a_maildir_and_a_default_display_name(store: Store) -> None:
    user = recipients.create_recipient(
        store, "markc", attributes={"givenName": "Mark", "initials": "M", "sn": "Clark"}
    )
    assert user.display_name == "Mark M. Clark"
    maildir = store.paths.mailbox("markc")
    assert {p.name for p in maildir.iterdir()} == {"cur", "new", "tmp"}
    assert stat.S_IMODE(maildir.stat().st_mode) == 0o700
    attrs = user.ldap_attributes()
    assert attrs["mailNickname"] == "markc" and "user" in attrs["objectClass"]


def test_password_is_stored_as_an_argon2id_hash(store: Store) -> None:
    recipients.create_recipient(store, "ann", password="correct horse")
    with store.read() as conn:
        stored = rows.password_hash(conn, "ann")
    assert stored is not None and stored.startswith("$argon2id$") and "correct" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    recipients.edit_recipient(store, "ann", password=None)
    with store.read() as conn:
        assert rows.password_hash(conn, "ann") is None


def test_contact_and_group(store: Store) -> None:
    contact = recipients.create_recipient(store, "partner", "contact", target="Ann@Partner.Example")
    assert contact.target == "Ann@partner.example"
    recipients.create_recipient(store, "ann")
    inner = recipients.create_recipient(store, "inner", "group", members=["ann", "partner"])
    outer = recipients.create_recipient(store, "outer", "group", members=["inner", "ann"])
    assert inner.members == ("ann", "partner")
    assert outer.members == ("ann", "inner")
    assert recipients.member_of(store, "ann") == ["inner", "outer"]
    # Nested loops are allowed in the directory; delivery expands them loop-safely.
    looped = recipients.edit_recipient(store, "inner", members=["outer"])
    assert looped.members == ("outer",)


def test_edit_merges_attributes_and_takes_a_new_change_number(store: Store) -> None:
    ann = recipients.create_recipient(store, "ann", attributes={"company": "Contoso", "sn": "A"})
    changed = recipients.edit_recipient(store, "ann", attributes={"company": "", "title": "CEO"})
    assert dict(changed.attributes) == {"sn": "A", "title": "CEO", "displayName": "A"}
    assert changed.usn > ann.usn


def test_rename_moves_the_maildir(store: Store) -> None:
    recipients.create_recipient(store, "ann")
    (store.paths.mailbox("ann") / "new" / "1.msg").write_text("hello")
    recipients.edit_recipient(store, "ann", new_alias="anna")
    assert (store.paths.mailbox("anna") / "new" / "1.msg").read_text() == "hello"
    assert not store.paths.mailbox("ann").exists()


def test_delete_keeps_the_mail(store: Store) -> None:
    recipients.create_recipient(store, "ann")
    recipients.delete_recipient(store, "ann")
    assert store.paths.mailbox("ann").is_dir()
    with pytest.raises(NotFoundError):
        recipients.get_recipient(store, "ann")


def test_addresses_primary_and_removal(store: Store) -> None:
    recipients.create_recipient(store, "ann")
    ann = recipients.add_address(store, "ann", "ann@example.com")
    assert ann.addresses == (ProxyAddress("SMTP", "ann@example.com", True),)
    recipients.add_address(store, "ann", "a.smith@example.com")
    ann = recipients.set_primary_address(store, "ann", "A.Smith@Example.com")
    assert ann.primary_address() == "a.smith@example.com"
    assert ProxyAddress("SMTP", "ann@example.com", False) in ann.addresses
    with pytest.raises(PostroomError, match="Set another address as primary"):
        recipients.remove_address(store, "ann", "a.smith@example.com")
    ann = recipients.remove_address(store, "ann", "ann@example.com")
    assert [a.address for a in ann.addresses] == ["a.smith@example.com"]


def test_duplicate_proxy_address_is_refused_whatever_the_case(store: Store) -> None:
    recipients.create_recipient(store, "ann")
    recipients.create_recipient(store, "bob")
    recipients.add_address(store, "ann", "sales@example.com")
    counter = store.change_counter()
    with pytest.raises(ConflictError, match="already belongs to 'ann'"):
        recipients.add_address(store, "bob", "SALES@example.COM")
    assert recipients.get_recipient(store, "bob").addresses == ()
    assert store.change_counter() == counter


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: recipients.create_recipient(s, ""), "alias is empty"),
        (lambda s: recipients.create_recipient(s, "../evil"), "not a valid alias"),
        (lambda s: recipients.create_recipient(s, "a b"), "not a valid alias"),
        (lambda s: recipients.create_recipient(s, "x" * 65), "not a valid alias"),
        (lambda s: recipients.create_recipient(s, "Existing"), "already used"),
        (lambda s: recipients.create_recipient(s, "c", "contact"), "needs a target"),
        (lambda s: recipients.create_recipient(s, "c", "contact", target="no-at"), "@"),
        (lambda s: recipients.create_recipient(s, "g", "group", members=["ghost"]), "ghost"),
        (lambda s: recipients.create_recipient(s, "u", members=["existing"]), "Only a group"),
        (
            lambda s: recipients.create_recipient(
                s, "c", "contact", target="a@b.example", password="x"
            ),
            "Only a user",
        ),
        (lambda s: recipients.create_recipient(s, "u", attributes={"bogus": "1"}), "'bogus'"),
        (lambda s: recipients.create_recipient(s, "u", "robot"), "not a recipient type"),  # type: ignore[arg-type]
        (lambda s: recipients.add_address(s, "existing", "a" * 65 + "@example.com"), "64"),
        (lambda s: recipients.add_address(s, "existing", "x@*.example.com"), "wildcard"),
        (lambda s: recipients.add_address(s, "nobody", "x@example.com"), "no recipient"),
        (lambda s: recipients.edit_recipient(s, "existing", new_alias="other"), "already used"),
        (lambda s: recipients.edit_recipient(s, "existing", password=""), "password is empty"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(store: Store, call, message: str) -> None:  # type: ignore[no-untyped-def]
    recipients.create_recipient(store, "existing")
    recipients.create_recipient(store, "other")
    before = recipients.list_recipients(store)
    counter = store.change_counter()
    with pytest.raises(PostroomError, match=message.replace("*", r"\*")):
        call(store)
    assert recipients.list_recipients(store) == before
    assert store.change_counter() == counter


def test_with_primary_address_demotes_only_the_same_type() -> None:
    addresses = [
        ProxyAddress("SMTP", "a@example.com", True),
        ProxyAddress("SMTP", "b@example.com", False),
        ProxyAddress("X400", "c=US;a= ;p=Org;s=A", True),
    ]
    result = recipients.with_primary_address(addresses, 1)
    assert [(a.address, a.primary) for a in result] == [
        ("a@example.com", False),
        ("b@example.com", True),
        ("c=US;a= ;p=Org;s=A", True),
    ]
    assert addresses[0].primary  # the input is left as it was
