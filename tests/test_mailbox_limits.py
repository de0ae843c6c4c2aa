"""Mailbox limits (Storage Limits): sizes counted off the event loop, refused at RCPT when full."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import settings
from app.directory import recipients
from app.mailstore import maildir
from app.mailstore.usage import LimitState, MailboxLimits, MailboxUsage, limits_of, mailbox_size
from app.store import Store
from tests.smtp_support import Smtp, message, organisation, rcpt, start

BIG = (b"x" * 70 + b"\r\n") * 42  # about 3 KiB: one message puts a 2 KiB mailbox over


@pytest.fixture
def smtp(store: Store) -> Iterator[Smtp]:
    organisation(store)
    running = start(store)
    yield running
    running.service.stop()


def deliver(smtp: Smtp, to: str, body: bytes = BIG) -> None:
    with smtp.client() as client:
        client.sendmail("sender@outside.test", [to], message("Big").rstrip(b"\r\n") + body)


def rcpt_reply(smtp: Smtp, address: str) -> tuple[int, str]:
    with smtp.client() as client:
        client.mail("sender@outside.test")
        return rcpt(client, f"<{address}>")


def wait_reply(smtp: Smtp, address: str, code: int, timeout: float = 8) -> str:
    """RCPT until it gets ``code``: sizes are recounted every 2 s, off the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        got, text = rcpt_reply(smtp, address)
        if got == code:
            return text
        assert time.monotonic() < deadline, (got, text)
        time.sleep(0.1)


def write_message(folder: Path, sub: str, name: str, size: int) -> None:
    maildir.ensure(folder)
    (folder / sub / name).write_bytes(b"x" * size)


# -- the effective limits -------------------------------------------------------------------------


def test_limits_of_take_the_store_default_for_each_limit_the_user_has_not_set(
    store: Store,
) -> None:
    current = settings.save_settings(store, mailbox_warn_default=100, mailbox_prohibit_default=200)
    user = recipients.create_recipient(store, "amy")
    assert limits_of(user, current) == MailboxLimits(100, 200, from_store=True)
    own = recipients.edit_recipient(store, "amy", quota_prohibit=500)
    assert limits_of(own, current) == MailboxLimits(100, 500, from_store=False)
    unlimited = recipients.edit_recipient(store, "amy", quota_warn=0, quota_prohibit=0)
    assert limits_of(unlimited, current) == MailboxLimits(0, 0, from_store=False)


def test_limit_state_is_at_or_over_each_limit() -> None:
    limits = MailboxLimits(warn=1, prohibit=2)
    assert limits.state(1023) is LimitState.UNDER
    assert limits.state(1024) is LimitState.WARNING
    assert limits.state(2047) is LimitState.WARNING
    assert limits.state(2048) is LimitState.PROHIBITED
    assert MailboxLimits(0, 0).state(10**12) is LimitState.UNDER


# -- counting -------------------------------------------------------------------------------------


def test_usage_counts_new_cur_and_maildir_plus_plus_folders(store: Store) -> None:
    box = store.paths.mailbox("amy")
    write_message(box, "new", "1700000000.M1P1.host,S=100", 100)
    write_message(box, "cur", "1700000001.M1P1.host,S=200:2,S", 200)
    write_message(box / ".Junk", "cur", "1700000002.M1P1.host,S=400:2,", 400)
    write_message(box, "tmp", "1700000003.M1P1.host,S=800", 800)  # not delivered yet
    usage = MailboxUsage(store.paths)
    assert usage.size("amy") is None  # not followed yet
    usage.refresh(["Amy"])
    assert usage.size("amy") == usage.size("AMY") == 700 == mailbox_size(box)


def test_usage_recounts_a_changed_folder_and_forgets_unfollowed_mailboxes(store: Store) -> None:
    box = store.paths.mailbox("amy")
    write_message(box, "new", "1700000000.M1P1.host,S=100", 100)
    usage = MailboxUsage(store.paths)
    usage.refresh(["amy", "nobody"])
    assert (usage.size("amy"), usage.size("nobody")) == (100, 0)  # no Maildir: empty
    time.sleep(0.02)  # past the file system's time stamp granularity
    write_message(box, "new", "1700000001.M1P1.host,S=50", 50)
    (box / "new" / "1700000000.M1P1.host,S=100").unlink()
    usage.refresh(["amy"])
    assert usage.size("amy") == 50
    assert usage.size("nobody") is None


# -- RCPT -----------------------------------------------------------------------------------------


def test_a_full_mailbox_is_refused_452_and_the_mail_already_there_is_kept(smtp: Smtp) -> None:
    recipients.edit_recipient(smtp.store, "jsmith", quota_prohibit=2)
    smtp.index_follows()
    deliver(smtp, "jsmith@example.com")  # below the limit when it came: accepted, as Exchange
    text = wait_reply(smtp, "jsmith@example.com", 452)
    assert text == "4.2.2 <jsmith@example.com>: Mailbox full: over its limit of 2 KB"
    assert len(smtp.maildir("jsmith")) == 1
    # The other users are not held up, and the refusal is in the tracking events.
    assert rcpt_reply(smtp, "ann@example.net")[0] == 250
    refused = smtp.wait_events("rejected")
    assert (refused[0].code, refused[0].recipients) == (452, ("jsmith@example.com",))
    # The whole message is refused too when it is sent: nothing more is stored.
    with smtp.client() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("sender@outside.test", ["jsmith@example.com"], message("More"))
    assert len(smtp.maildir("jsmith")) == 1


def test_the_setting_makes_it_552_and_a_higher_limit_accepts_again(smtp: Smtp) -> None:
    recipients.edit_recipient(smtp.store, "jsmith", quota_prohibit=2)
    smtp.index_follows()
    deliver(smtp, "jsmith@example.com")
    wait_reply(smtp, "jsmith@example.com", 452)
    settings.save_settings(smtp.store, mailbox_full_permanent=True)
    smtp.index_follows()
    assert rcpt_reply(smtp, "jsmith@example.com") == (
        552,
        "5.2.2 <jsmith@example.com>: Mailbox full: over its limit of 2 KB",
    )
    recipients.edit_recipient(smtp.store, "jsmith", quota_prohibit=100)
    smtp.index_follows()
    assert rcpt_reply(smtp, "jsmith@example.com")[0] == 250


def test_the_store_default_applies_and_a_users_zero_means_no_limit(smtp: Smtp) -> None:
    deliver(smtp, "jsmith@example.com")
    deliver(smtp, "ann@example.net")
    settings.save_settings(smtp.store, mailbox_prohibit_default=1)
    smtp.index_follows()
    wait_reply(smtp, "jsmith@example.com", 452)
    wait_reply(smtp, "ann@example.net", 452)
    recipients.edit_recipient(smtp.store, "ann", quota_prohibit=0)
    smtp.index_follows()
    assert rcpt_reply(smtp, "ann@example.net")[0] == 250
    assert rcpt_reply(smtp, "jsmith@example.com")[0] == 452


def test_a_group_with_one_full_member_still_reaches_the_others(smtp: Smtp) -> None:
    store = smtp.store
    recipients.create_recipient(store, "team", "group", members=["jsmith", "ann"])
    recipients.add_address(store, "team", "team@example.com")
    recipients.edit_recipient(store, "jsmith", quota_prohibit=2)
    smtp.index_follows()
    deliver(smtp, "jsmith@example.com")
    wait_reply(smtp, "jsmith@example.com", 452)
    assert rcpt_reply(smtp, "team@example.com")[0] == 250
    # Every member full: the group's address is refused too.
    recipients.edit_recipient(store, "ann", quota_prohibit=2)
    smtp.index_follows()
    deliver(smtp, "ann@example.net")
    text = wait_reply(smtp, "team@example.com", 452)
    assert "Every mailbox it reaches is full" in text


def test_mail_filed_in_junk_counts_against_the_limit(smtp: Smtp) -> None:
    box = smtp.store.paths.mailbox("jsmith")
    write_message(box / ".Junk", "new", "1700000000.M1P1.host,S=4096", 4096)
    recipients.edit_recipient(smtp.store, "jsmith", quota_prohibit=4)
    smtp.index_follows()
    wait_reply(smtp, "jsmith@example.com", 452)
