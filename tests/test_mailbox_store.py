"""The Mailbox Store read-only: counts, sizes and last delivery per Maildir, message lists, and
messages decoded for reading, including the awkward ones mail clients and senders produce."""

from __future__ import annotations

import os
import shutil
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from app.directory import recipients
from app.errors import NotFoundError, PostroomError
from app.mailstore import maildir
from app.mailstore.mailboxes import (
    MailboxScanner,
    folder_stamp,
    folder_stats,
    list_mailboxes,
    list_messages,
    mailbox_path,
    read_message,
)
from app.store import Store


def message(
    subject: str, body: str = "Hello.\n", sender: str = "Ann <ann@partner.example>"
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "jsmith@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = "<1@partner.example>"
    mail.set_content(body)
    return mail.as_bytes()


@pytest.fixture
def jsmith(store: Store) -> Path:
    recipients.create_recipient(
        store,
        "JSmith",
        attributes={"givenName": "John", "sn": "Smith", "displayName": "John Smith"},
    )
    return store.paths.mailbox("jsmith")


def test_a_new_user_has_an_empty_mailbox(store: Store, jsmith: Path) -> None:
    [box] = list_mailboxes(store)
    assert (box.name, box.alias, box.display_name) == ("jsmith", "JSmith", "John Smith")
    assert box.path == jsmith and box.exists and box.has_user
    assert (box.items, box.size, box.last_delivery) == (0, 0, None)
    assert list_messages(jsmith) == []


def test_counts_sizes_and_last_delivery(store: Store, jsmith: Path) -> None:
    first = message("First")
    second = message("Second", "A longer body.\n" * 10)
    before = time.time()
    maildir.deliver(jsmith, first)
    maildir.deliver(jsmith, second)
    [box] = list_mailboxes(store)
    assert box.items == 2
    assert box.size == len(first) + len(second)
    assert box.last_delivery is not None and before - 1 <= box.last_delivery <= time.time()

    listed = list_messages(jsmith)
    assert [m.subject for m in listed] == ["Second", "First"], "newest first"
    assert listed[0].sender == "Ann <ann@partner.example>"
    assert listed[0].size == len(second) and listed[0].unread


def test_reading_a_message_gives_its_headers_and_text(jsmith: Path) -> None:
    maildir.deliver(jsmith, message("Quarterly report", "Line one.\nLine two.\n"))
    [listed] = list_messages(jsmith)
    content = read_message(jsmith, listed.key)
    assert content.header("subject") == "Quarterly report"
    assert content.header("From") == "Ann <ann@partner.example>"
    assert [name for name, _ in content.headers][:3] == ["From", "To", "Subject"]
    assert content.text == "Line one.\nLine two.\n"
    assert content.note == "" and content.parts == ()


def test_a_message_a_client_moved_to_cur_and_flagged_seen_is_still_found(jsmith: Path) -> None:
    path = maildir.deliver(jsmith, message("Seen"))
    [listed] = list_messages(jsmith)
    os.rename(path, jsmith / "cur" / f"{path.name}:2,S")
    [moved] = list_messages(jsmith)
    assert moved.key == listed.key and not moved.unread
    assert read_message(jsmith, moved.key).header("Subject") == "Seen"


def test_a_deleted_message_says_so(jsmith: Path) -> None:
    path = maildir.deliver(jsmith, message("Gone"))
    [listed] = list_messages(jsmith)
    path.unlink()
    with pytest.raises(NotFoundError, match="no longer in the mailbox"):
        read_message(jsmith, listed.key)
    assert list_messages(jsmith) == []


def test_encoded_words_and_8bit_garbage_in_headers_are_shown_not_raised(jsmith: Path) -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@partner.example>\r\n"
        b"Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus\r\n"
        b"X-Broken: caf\xe9 \xff\xfe\r\n"
        b"To: <<<@@>>>\r\n"
        b"\r\n"
        b"Body\r\n"
    )
    maildir.deliver(jsmith, raw)
    [listed] = list_messages(jsmith)
    assert listed.sender == "Jürgen Müller <jm@partner.example>"
    assert listed.subject == "Grüße aus"
    content = read_message(jsmith, listed.key)
    broken = content.header("X-Broken")
    assert broken.startswith("caf") and "\ufffd" in broken
    assert not any("\udc80" <= char <= "\udcff" for _, value in content.headers for char in value)
    assert content.text.strip() == "Body"


def test_html_only_is_shown_as_text_and_attachments_are_listed(jsmith: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "news@partner.example"
    mail["Subject"] = "Newsletter"
    mail.set_content(
        "<html><head><style>p {color: red}</style></head>"
        "<body><p>Hello &amp; welcome</p><p>Second   paragraph</p></body></html>",
        subtype="html",
    )
    mail.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="a.pdf")
    maildir.deliver(jsmith, mail.as_bytes())
    [listed] = list_messages(jsmith)
    content = read_message(jsmith, listed.key)
    assert content.text == "Hello & welcome\n\nSecond paragraph"
    assert "no plain-text part" in content.note
    assert [(p.content_type, p.filename, p.size) for p in content.parts] == [
        ("application/pdf", "a.pdf", 13)
    ]


def test_a_message_with_an_unknown_charset_still_shows_its_text(jsmith: Path) -> None:
    raw = (
        b"From: a@partner.example\r\nSubject: odd\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nplain words\r\n"
    )
    maildir.deliver(jsmith, raw)
    [listed] = list_messages(jsmith)
    assert read_message(jsmith, listed.key).text.strip() == "plain words"


def test_a_header_without_end_and_a_huge_text_are_cut(jsmith: Path) -> None:
    from app.mailstore import mailboxes as mailbox_store

    body = "x" * (mailbox_store.TEXT_LIMIT + 10)
    maildir.deliver(jsmith, message("Huge", body))
    [listed] = list_messages(jsmith)
    content = read_message(jsmith, listed.key)
    assert len(content.text) == mailbox_store.TEXT_LIMIT
    assert "Only the first 1,000,000 characters" in content.note


def test_file_names_of_other_clients_fall_back_to_the_file(jsmith: Path) -> None:
    data = message("From mutt")
    (jsmith / "cur" / "mutt-file:2,RS").write_bytes(data)
    os.utime(jsmith / "cur" / "mutt-file:2,RS", (1_600_000_000, 1_600_000_000))
    (jsmith / "new" / ".hidden").write_bytes(b"not a message")
    [listed] = list_messages(jsmith)
    assert (listed.key, listed.size, listed.received) == ("mutt-file", len(data), 1_600_000_000)
    assert folder_stats(jsmith).items == 1
    assert read_message(jsmith, "mutt-file").header("Subject") == "From mutt"


def test_messages_in_tmp_are_not_delivered_yet(jsmith: Path) -> None:
    (jsmith / "tmp" / "123.M1P1Q1.host,S=5").write_bytes(b"Hello")
    assert folder_stats(jsmith).items == 0


def test_ownerless_maildirs_and_users_without_one_are_listed(store: Store, jsmith: Path) -> None:
    maildir.deliver(store.paths.mailbox("postmaster"), message("For the postmaster"))
    (store.paths.mailboxes / "not-a-maildir").mkdir()
    recipients.create_recipient(store, "bwayne")
    shutil.rmtree(store.paths.mailbox("bwayne"))
    boxes = {box.name: box for box in list_mailboxes(store)}
    assert sorted(boxes) == ["bwayne", "jsmith", "postmaster"]
    assert not boxes["postmaster"].has_user and boxes["postmaster"].items == 1
    assert boxes["bwayne"].has_user and not boxes["bwayne"].exists


def test_contacts_and_groups_have_no_mailbox(store: Store, jsmith: Path) -> None:
    recipients.create_recipient(store, "partner", "contact", target="ann@partner.example")
    recipients.create_recipient(store, "team", "group", members=["jsmith"])
    assert [box.name for box in list_mailboxes(store)] == ["jsmith"]


def test_the_scanner_recounts_only_what_changed(
    store: Store, jsmith: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.mailstore import mailboxes as mailbox_store

    scanner = MailboxScanner(store.paths)
    maildir.deliver(jsmith, message("One"))
    assert [box.items for box in scanner.scan(store)] == [1]
    assert not scanner.changed()

    counted: list[Path] = []
    real = mailbox_store.folder_stats

    def counting(path: Path) -> mailbox_store.FolderStats:
        counted.append(path)
        return real(path)

    monkeypatch.setattr(mailbox_store, "folder_stats", counting)
    assert [box.items for box in scanner.scan(store)] == [1]
    assert counted == [], "an unchanged Maildir is not listed again"

    stamp = folder_stamp(jsmith)
    maildir.deliver(jsmith, message("Two"))
    # Two deliveries within one tick of the file system clock would look alike: make it move.
    if folder_stamp(jsmith) == stamp:
        os.utime(jsmith / "new", ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert scanner.changed()
    assert [box.items for box in scanner.scan(store)] == [2]
    assert counted == [jsmith]

    maildir.deliver(store.paths.mailbox("postmaster"), message("New folder"))
    assert scanner.changed(), "a new Maildir folder is noticed"


def test_a_missing_maildir_has_no_stamp(tmp_path: Path) -> None:
    assert folder_stamp(tmp_path / "nowhere") is None
    assert list_messages(tmp_path / "nowhere") == []
    with pytest.raises(NotFoundError):
        read_message(tmp_path / "nowhere", "123")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x\0y"])
def test_mailbox_names_cannot_leave_the_store(store: Store, name: str) -> None:
    with pytest.raises(PostroomError, match="is not a mailbox name"):
        mailbox_path(store.paths, name)
    assert mailbox_path(store.paths, "jsmith") == store.paths.mailboxes / "jsmith"
