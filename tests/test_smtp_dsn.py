"""RFC 3461 over real SMTP on loopback: DSN advertised, NOTIFY / RET / ENVID / ORCPT kept with
the queued message exactly, and every malformed parameter refused with nothing stored."""

from __future__ import annotations

import json
import smtplib
from typing import Any

import pytest

from app.directory import recipients
from app.queue import spool
from tests.smtp_support import Smtp, message, rcpt

SENDER = "sender@outside.test"
ONWARD = "someone@shared.test"  # a shared domain: queued for elsewhere, no relay rights needed


def queued_envelopes(smtp: Smtp) -> list[dict[str, Any]]:
    """The JSON envelope line of every queue file, as the outbound queue will read it."""
    active = smtp.store.paths.queue / "active"
    found = []
    for path in sorted(active.iterdir()) if active.is_dir() else []:
        data = path.read_bytes()
        assert data.startswith(spool.MAGIC)
        found.append(json.loads(data[len(spool.MAGIC) :].split(b"\n", 1)[0]))
    return found


def command(client: smtplib.SMTP, verb: str, arg: str) -> tuple[int, str]:
    code, text = client.docmd(verb, arg)
    return code, text.decode()


def add_contact(smtp: Smtp, alias: str, address: str, target: str) -> None:
    recipients.create_recipient(smtp.store, alias, "contact", target=target)
    recipients.add_address(smtp.store, alias, address)


# -- what is advertised and stored ---------------------------------------------------------------


def test_ehlo_lists_dsn_and_help_still_knows_mail_and_rcpt(smtp: Smtp) -> None:
    with smtp.client() as client:
        assert client.has_extn("dsn")
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        assert client.has_extn("size") and client.has_extn("starttls")
        assert command(client, "HELP", "RCPT") == (
            250,
            "Syntax: RCPT TO: <address> [SP <mail-parameters>]",
        )
        assert command(client, "HELP", "MAIL")[0] == 250
        assert command(client, "HELP", "EHLO") == (250, "Syntax: EHLO hostname")


def test_parameters_are_stored_exactly_with_xtext_decoded(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(
            SENDER,
            [ONWARD],
            message("Tracked"),
            mail_options=["SIZE=200", "BODY=8BITMIME", "RET=HDRS", "ENVID=Case+2BKept+3D1"],
            rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;a+2Bb@x"],
        )
    [envelope] = queued_envelopes(smtp)
    assert envelope["recipients"] == [ONWARD]
    assert envelope["smtputf8"] is False
    assert envelope["ret"] == "HDRS"
    assert envelope["envid"] == "Case+Kept=1"
    assert envelope["dsn"] == {ONWARD: {"notify": "SUCCESS,FAILURE", "orcpt": "rfc822;a+b@x"}}


def test_keywords_in_any_case_are_stored_in_their_standard_form(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(
            SENDER,
            [ONWARD],
            message("Lower"),
            mail_options=["ret=full", "envid=lower+2dcase"],
            rcpt_options=["notify=delay,Success"],
        )
    [envelope] = queued_envelopes(smtp)
    assert envelope["ret"] == "FULL" and envelope["envid"] == "lower-case"
    assert envelope["dsn"] == {ONWARD: {"notify": "SUCCESS,DELAY"}}


def test_each_recipient_keeps_its_own_requests(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.mail(SENDER)
        assert rcpt(client, "<one@shared.test> NOTIFY=NEVER")[0] == 250
        assert rcpt(client, "<two@shared.test>")[0] == 250
        assert rcpt(client, "<three@shared.test> ORCPT=rfc822;Three+40old.test")[0] == 250
        assert client.data(message("Three"))[0] == 250
    [envelope] = queued_envelopes(smtp)
    assert envelope["recipients"] == ["one@shared.test", "two@shared.test", "three@shared.test"]
    assert envelope["ret"] is None and envelope["envid"] is None
    assert envelope["dsn"] == {
        "one@shared.test": {"notify": "NEVER"},
        "three@shared.test": {"orcpt": "rfc822;Three@old.test"},
    }


def test_mail_without_parameters_has_no_requests(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(SENDER, [ONWARD], message("Plain"))
    [envelope] = queued_envelopes(smtp)
    assert envelope["dsn"] == {}
    assert envelope["ret"] is None and envelope["envid"] is None
    assert envelope["smtputf8"] is False


def test_smtputf8_is_recorded(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(SENDER, [ONWARD], message("Utf8"), mail_options=["SMTPUTF8"])
    [envelope] = queued_envelopes(smtp)
    assert envelope["smtputf8"] is True and envelope["dsn"] == {}


def test_requests_do_not_outlive_their_transaction(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.mail(SENDER, ["RET=FULL", "ENVID=first"])
        assert rcpt(client, f"<{ONWARD}> NOTIFY=SUCCESS")[0] == 250
        client.rset()
        client.sendmail(SENDER, [ONWARD], message("After reset"))
        client.sendmail(SENDER, [ONWARD], message("Second"), mail_options=["ENVID=second"])
        client.sendmail(SENDER, [ONWARD], message("Third"))
    kept = {e["message_id"]: (e["ret"], e["envid"], e["dsn"]) for e in queued_envelopes(smtp)}
    assert kept == {
        "<After-reset@outside.test>": (None, None, {}),
        "<Second@outside.test>": (None, "second", {}),
        "<Third@outside.test>": (None, None, {}),
    }


def test_longest_allowed_values_fit_in_the_command_lines(smtp: Smtp) -> None:
    envid = "E" * 100
    original = "rfc822;" + "o" * 480 + "@old.test"  # 496 characters
    with smtp.client() as client:
        code, text = command(client, "MAIL", f"FROM:<{SENDER}> SIZE=100 RET=FULL ENVID={envid}")
        assert code == 250, text
        code, text = rcpt(client, f"<{ONWARD}> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT={original}")
        assert code == 250, text
        assert client.data(message("Long"))[0] == 250
    [envelope] = queued_envelopes(smtp)
    assert envelope["envid"] == envid
    assert envelope["dsn"][ONWARD] == {"notify": "SUCCESS,FAILURE,DELAY", "orcpt": original}


def test_line_limits_are_each_sessions_own_and_do_not_grow(smtp: Smtp) -> None:
    original = "rfc822;" + "o" * 480 + "@old.test"
    with smtp.client() as first:
        first.mail(SENDER)
        with smtp.client() as second:  # a new connection does not shorten the first one's lines
            second.mail(SENDER)
            assert rcpt(first, f"<{ONWARD}> ORCPT={original}")[0] == 250
            assert rcpt(second, f"<{ONWARD}> ORCPT={original}")[0] == 250
        for _ in range(20):
            first.ehlo("client.test")
        # MAIL may be 512 + 26 (SIZE) + 10 (SMTPUTF8) + 110 (DSN) long, however often EHLO came.
        longest = f"FROM:<{SENDER}> ENVID={'e' * 100} RET=HDRS SIZE=1 X{'x' * 550}=1"
        assert command(first, "MAIL", longest) == (500, "Command line too long")
        assert command(first, "MAIL", f"FROM:<{SENDER}> ENVID={'e' * 100} RET=HDRS")[0] == 250
    assert queued_envelopes(smtp) == []


def test_local_delivery_takes_the_parameters_and_queues_nothing(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(
            SENDER,
            ["jsmith@example.com"],
            message("Local"),
            mail_options=["RET=HDRS"],
            rcpt_options=["NOTIFY=SUCCESS"],
        )
    [copy] = smtp.maildir("jsmith")
    assert b"Subject: Local" in copy
    assert queued_envelopes(smtp) == []


# -- contacts and groups -------------------------------------------------------------------------


def test_a_contact_records_the_address_the_sender_wrote(smtp: Smtp) -> None:
    add_contact(smtp, "partner", "partner@example.com", "ann@partner.test")
    smtp.index_follows()
    with smtp.client() as client:
        client.sendmail(
            SENDER, ["Partner@example.com"], message("Fwd"), rcpt_options=["NOTIFY=FAILURE"]
        )
        client.sendmail(SENDER, ["partner@example.com"], message("Fwd plain"))
    first, second = sorted(queued_envelopes(smtp), key=lambda e: e["message_id"])
    assert first["message_id"] == "<Fwd-plain@outside.test>"
    # No NOTIFY: the original recipient alone is kept.
    assert first["dsn"] == {"ann@partner.test": {"orcpt": "rfc822;partner@example.com"}}
    assert second["recipients"] == ["ann@partner.test"]
    assert second["dsn"] == {
        "ann@partner.test": {"notify": "FAILURE", "orcpt": "rfc822;Partner@example.com"}
    }


def test_a_contact_keeps_the_clients_own_orcpt(smtp: Smtp) -> None:
    add_contact(smtp, "partner", "partner@example.com", "ann@partner.test")
    smtp.index_follows()
    with smtp.client() as client:
        client.sendmail(
            SENDER,
            ["partner@example.com"],
            message("Fwd"),
            rcpt_options=["ORCPT=rfc822;first+2Bhop@origin.test"],
        )
    [envelope] = queued_envelopes(smtp)
    assert envelope["dsn"] == {"ann@partner.test": {"orcpt": "rfc822;first+hop@origin.test"}}


def test_a_group_gives_each_remote_member_the_rcpts_notify(smtp: Smtp) -> None:
    add_contact(smtp, "p1", "p1@example.com", "one@partner.test")
    add_contact(smtp, "p2", "p2@example.com", "two@partner.test")
    recipients.create_recipient(smtp.store, "team", "group", members=["p1", "p2", "jsmith"])
    recipients.add_address(smtp.store, "team", "team@example.com")
    smtp.index_follows()
    with smtp.client() as client:
        client.sendmail(
            SENDER, ["team@example.com"], message("Team"), rcpt_options=["NOTIFY=DELAY,FAILURE"]
        )
    [envelope] = queued_envelopes(smtp)
    assert sorted(envelope["recipients"]) == ["one@partner.test", "two@partner.test"]
    wanted = {"notify": "FAILURE,DELAY", "orcpt": "rfc822;team@example.com"}
    assert envelope["dsn"] == {"one@partner.test": wanted, "two@partner.test": wanted}
    assert len(smtp.maildir("jsmith")) == 1  # the local member has its copy


def test_a_target_reached_twice_keeps_the_first_rcpts_requests(smtp: Smtp) -> None:
    add_contact(smtp, "p1", "p1@example.com", "one@partner.test")
    smtp.index_follows()
    with smtp.client() as client:
        client.mail(SENDER)
        assert rcpt(client, "<p1@example.com> NOTIFY=SUCCESS")[0] == 250
        assert rcpt(client, "<one@partner.test> NOTIFY=NEVER")[0] == 550  # not ours to relay
        assert rcpt(client, "<P1@example.com> NOTIFY=NEVER")[0] == 250
        assert client.data(message("Twice"))[0] == 250
    [envelope] = queued_envelopes(smtp)
    assert envelope["recipients"] == ["one@partner.test"]
    assert envelope["dsn"] == {
        "one@partner.test": {"notify": "SUCCESS", "orcpt": "rfc822;p1@example.com"}
    }


# -- refused forms -------------------------------------------------------------------------------

BAD_MAIL = [
    ("RET=PARTIAL", "RET=PARTIAL is not valid"),
    ("RET=FULL RET=HDRS", "RET may be given only once"),
    ("RET", "RET needs a value"),
    ("RET=", "RET needs a value"),
    ("ENVID=a+2", "ENVID is not valid xtext"),
    ("ENVID=a+ZZb", "ENVID is not valid xtext"),
    ("ENVID=a=b", "ENVID is not valid xtext"),
    ("ENVID=caf\u00e9", "ENVID is not valid xtext"),
    ("ENVID=line+0D+0ABcc:x", "ENVID must stand for printable US-ASCII"),
    ("ENVID=caf+C3+A9", "ENVID must stand for printable US-ASCII"),
    ("ENVID=" + "x" * 101, "ENVID is 101 characters long; at most 100"),
    ("ENVID=one ENVID=two", "ENVID may be given only once"),
]

BAD_RCPT = [
    ("NOTIFY=SOMETIMES", "NOTIFY=SOMETIMES is not valid: use NEVER"),
    ("NOTIFY=NEVER,SUCCESS", "NEVER cannot be combined"),
    ("NOTIFY=SUCCESS,,FAILURE", "NOTIFY=SUCCESS,,FAILURE is not valid"),
    ("NOTIFY=", "NOTIFY needs a value"),
    ("NOTIFY=FAILURE NOTIFY=DELAY", "NOTIFY may be given only once"),
    ("ORCPT=user@example.com", "ORCPT needs an address type, ';' and the address"),
    ("ORCPT=;user@example.com", "ORCPT's address type before ';' must be a word"),
    ("ORCPT=rfc(822);user@example.com", "ORCPT's address type before ';' must be a word"),
    ("ORCPT=rfc822;", "ORCPT has no address after ';'"),
    ("ORCPT=rfc822;a+2@x", "ORCPT's address is not valid xtext"),
    ("ORCPT=rfc822;a+0D+0Ab@x", "ORCPT's address must stand for printable US-ASCII"),
    ("ORCPT=rfc822;" + "a" * 490 + "@x.test", "ORCPT is 504 characters long; at most 500"),
    ("ORCPT=rfc822;a@x ORCPT=rfc822;b@x", "ORCPT may be given only once"),
]


def assert_refused(answer: tuple[int, str], phrase: str) -> None:
    code, text = answer
    assert code == 501, answer
    assert text.startswith("5.5.4 ") and phrase in text, answer
    assert "\n" not in text  # one line


@pytest.mark.parametrize(("params", "phrase"), BAD_MAIL)
def test_bad_mail_parameters_are_refused_and_nothing_is_kept(
    smtp: Smtp, params: str, phrase: str
) -> None:
    with smtp.client() as client:
        client.command_encoding = "utf-8"  # so that a non-ASCII value reaches the server
        assert_refused(command(client, "MAIL", f"FROM:<{SENDER}> {params}"), phrase)
        # No sender was taken: the transaction never started.
        assert rcpt(client, f"<{ONWARD}>")[0] == 503
        assert client.docmd("DATA")[0] == 503
        # The session goes on, and the next transaction has none of the refused values.
        client.sendmail(SENDER, [ONWARD], message("Next"))
    [envelope] = queued_envelopes(smtp)
    assert envelope["ret"] is None and envelope["envid"] is None and envelope["dsn"] == {}
    refused = [e for e in smtp.wait_events("rejected") if e.code == 501]
    assert [phrase in e.reason for e in refused] == [True]


@pytest.mark.parametrize(("params", "phrase"), BAD_RCPT)
def test_bad_rcpt_parameters_are_refused_and_nothing_is_kept(
    smtp: Smtp, params: str, phrase: str
) -> None:
    with smtp.client() as client:
        client.mail(SENDER)
        assert_refused(rcpt(client, f"<{ONWARD}> {params}"), phrase)
        assert client.docmd("DATA")[0] == 503  # the recipient was not taken
        assert rcpt(client, "<other@shared.test>")[0] == 250
        assert client.data(message("Other"))[0] == 250
    [envelope] = queued_envelopes(smtp)
    assert envelope["recipients"] == ["other@shared.test"] and envelope["dsn"] == {}


def test_a_bad_parameter_beside_good_ones_refuses_the_whole_command(smtp: Smtp) -> None:
    with smtp.client() as client:
        assert_refused(
            command(client, "MAIL", f"FROM:<{SENDER}> RET=HDRS SIZE=10 ENVID=a+2"),
            "ENVID is not valid xtext",
        )
        client.mail(SENDER)
        assert_refused(
            rcpt(client, f"<{ONWARD}> ORCPT=rfc822;ok@x NOTIFY=ALWAYS"),
            "NOTIFY=ALWAYS is not valid",
        )
    assert queued_envelopes(smtp) == []


def test_dsn_parameters_after_helo_are_a_syntax_error(smtp: Smtp) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
        client.helo("client.test")
        code, text = command(client, "MAIL", f"FROM:<{SENDER}> RET=FULL")
        assert code == 501 and text.startswith("Syntax: MAIL FROM")
        client.mail(SENDER)
        code, _ = rcpt(client, f"<{ONWARD}> NOTIFY=NEVER")
        assert code == 501
    assert queued_envelopes(smtp) == []


def test_other_unknown_parameters_are_still_aiosmtpds_to_refuse(smtp: Smtp) -> None:
    with smtp.client() as client:
        code, _ = command(client, "MAIL", f"FROM:<{SENDER}> RET=FULL XUNKNOWN=1")
        assert code == 555
        client.mail(SENDER)
        code, _ = rcpt(client, f"<{ONWARD}> NOTIFY=NEVER XUNKNOWN=1")
        assert code == 555
    assert queued_envelopes(smtp) == []


def test_queue_reader_still_reads_the_extended_file(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(
            SENDER,
            [ONWARD],
            message("Read"),
            mail_options=["ENVID=x"],
            rcpt_options=["NOTIFY=NEVER"],
        )
    [entry] = smtp.queued()
    assert entry.recipients == (ONWARD,) and entry.sender == SENDER
    assert spool.read(entry.path)[1].endswith(b"Hello there.\r\n")
