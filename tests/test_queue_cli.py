"""``postroom queue …`` and ``postroom connector delete`` run as an administrator runs them: a
subprocess on a data directory whose queue holds real mail, taken by the SMTP service from a
relay-allowed client and deferred because its connector's smart host (a loopback port where
nothing listens) refuses the connection. Once with no queue running (the command applies the
request itself) and once beside ``postroom serve`` (the request goes through
``<data>/queue/control/`` and the running queue answers)."""

from __future__ import annotations

import email
import json
import os
import smtplib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from app.connectors import parse_address_space, parse_smart_host
from app.connectors.catalog import create_connector
from app.model import SmtpConnector
from app.outbound.queue import Item, load_items
from app.queue import spool, state
from app.settings import save_settings
from app.store import Store
from tests.smtp_support import Serve, Smtp, organisation, postroom, start

SENDER = "jsmith@example.com"  # a local user: an NDR lands in its Maildir
LIST_FIELDS = {"name", "state", "messages", "size", "oldest", "next_retry", "last_error"}


@dataclass
class Waiting:
    """A data directory whose queue holds three deferred messages: ``pair`` (a@ and b@far.test)
    and ``single`` (c@far.test) for the connector Partner, ``backup`` (d@near.test) for Backup."""

    store: Store
    dead_port: int
    names: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.store.paths.root

    @property
    def root(self) -> Path:
        return self.store.paths.queue

    def state_file(self, key: str) -> dict[str, Any]:
        raw: dict[str, Any] = json.loads((self.root / "state" / self.names[key]).read_bytes())
        return raw

    def active(self) -> set[str]:
        return set(spool.names(self.root))

    def files(self) -> dict[str, bytes]:
        """Every file under the queue (name → content): to show a refusal changed nothing."""
        found: dict[str, bytes] = {}
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = Path(folder) / name
                found[str(path.relative_to(self.root))] = path.read_bytes()
        return found


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def send(smtp: Smtp, recipients: list[str], subject: str) -> None:
    body = (
        f"From: {SENDER}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.com>\r\n\r\nHi.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
        client.sendmail(SENDER, recipients, body.encode())


def deferred(root: Path, count: int) -> list[Item]:
    items = load_items(root)
    return items if len(items) == count and all(i.state.attempts for i in items) else []


@pytest.fixture
def waiting(store: Store, free_port: int) -> Waiting:
    organisation(store)
    save_settings(
        store,
        smart_host="",
        relay_ips=["127.0.0.1"],
        retry_intervals="1h,1h,1h,1h",  # nothing is tried again while the test runs
        outbound_port=free_port,
        submission_listen="",
    )
    for name, space in (("Partner", "far.test"), ("Backup", "near.test")):
        connector = SmtpConnector(
            name=name,
            address_spaces=(parse_address_space(space),),
            smart_hosts=(parse_smart_host(f"[127.0.0.1]:{free_port}"),),
            use_dns=False,
        )
        create_connector(store, connector)
    running = start(store)
    try:
        send(running, ["a@far.test", "b@far.test"], "Pair")
        send(running, ["c@far.test"], "Single")
        send(running, ["d@near.test"], "Backup")
        items = wait_for(lambda: deferred(store.paths.queue, 3), what="three deferred messages")
    finally:
        running.service.stop()
    keys = {"a@far.test": "pair", "c@far.test": "single", "d@near.test": "backup"}
    names = {keys[item.entry.recipients[0]]: item.name for item in items}
    return Waiting(store, free_port, names)


def queue(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return postroom(data_dir, "queue", *args)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints on stderr (exit 1, nothing on stdout), after "postroom: "."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("postroom: "), lines[0]
    return lines[0].removeprefix("postroom: ")


def listed(data_dir: Path) -> dict[str, dict[str, Any]]:
    return {hop["name"]: hop for hop in json.loads(ok(queue(data_dir, "list", "--json")))}


def notices(store: Store, alias: str = "jsmith") -> list[Message]:
    folder = store.paths.mailbox(alias) / "new"
    if not folder.is_dir():
        return []
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(folder.iterdir())]


def failed_recipients(notice: Message) -> dict[str, str]:
    """Final-Recipient → Status of a notification's message/delivery-status part."""
    assert notice.get_content_type() == "multipart/report"
    parts = notice.get_payload()
    assert isinstance(parts, list)
    part = parts[1]
    assert isinstance(part, Message) and part.get_content_type() == "message/delivery-status"
    groups = part.get_payload()
    assert isinstance(groups, list) and len(groups) > 1
    found = {}
    for group in groups[1:]:
        assert isinstance(group, Message)
        assert group["Action"] == "failed"
        found[str(group["Final-Recipient"]).split(";")[1].strip()] = str(group["Status"])
    return found


# -- no queue running: the command applies the request itself ---------------------------------


def test_list_shows_each_queue_as_a_table_and_as_json(waiting: Waiting) -> None:
    lines = ok(queue(waiting.data_dir, "list")).splitlines()
    assert lines[0].startswith("Queue    State  Messages  Size    Oldest")
    assert lines[0].rstrip().endswith("Next retry        Last error")
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"Backup", "Partner"}
    assert rows["Partner"][1:3] == ["Retry", "2"]
    assert rows["Backup"][1:3] == ["Retry", "1"]
    assert f"port {waiting.dead_port}" in lines[2]

    hops = listed(waiting.data_dir)
    assert list(hops) == ["Backup", "Partner"]
    partner = hops["Partner"]
    assert set(partner) == LIST_FIELDS
    assert (partner["state"], partner["messages"]) == ("Retry", 2)
    sizes = [i.entry.size for i in load_items(waiting.root) if i.name != waiting.names["backup"]]
    assert partner["size"] == sum(sizes)
    assert partner["oldest"] is not None and partner["next_retry"] > partner["oldest"]
    assert "Connect call failed" in partner["last_error"]
    assert hops["Backup"]["messages"] == 1


def test_show_lists_the_messages_of_one_queue(waiting: Waiting) -> None:
    text = ok(queue(waiting.data_dir, "show", "partner"))  # names match whatever the case
    assert text.startswith("Partner: Retry, 2 message(s); last error: ")
    assert waiting.names["pair"] in text and waiting.names["single"] in text
    assert waiting.names["backup"] not in text
    assert f"<{SENDER}>" in text and "a@far.test, b@far.test" in text

    shown = json.loads(ok(queue(waiting.data_dir, "show", "Partner", "--json")))
    assert set(shown) == LIST_FIELDS | {"message_list"}
    by_id = {message["id"]: message for message in shown["message_list"]}
    pair = by_id[waiting.names["pair"]]
    assert pair["recipients"] == ["a@far.test", "b@far.test"]
    assert (pair["sender"], pair["attempts"], pair["frozen"]) == (SENDER, 1, False)
    assert pair["next_retry"] is not None
    assert by_id[waiting.names["single"]]["recipients"] == ["c@far.test"]


def test_freeze_and_unfreeze_a_queue(waiting: Waiting) -> None:
    text = ok(queue(waiting.data_dir, "freeze", "partner"))
    assert text == "Queue 'Partner' frozen (2 messages).\n"
    assert json.loads((waiting.root / "hops.json").read_bytes()) == {"frozen": ["Partner"]}
    hops = listed(waiting.data_dir)
    assert (hops["Partner"]["state"], hops["Backup"]["state"]) == ("Frozen", "Retry")

    assert ok(queue(waiting.data_dir, "unfreeze", "Partner")) == (
        "Queue 'Partner' unfrozen (2 messages).\n"
    )
    assert json.loads((waiting.root / "hops.json").read_bytes()) == {"frozen": []}
    assert listed(waiting.data_dir)["Partner"]["state"] == "Retry"


def test_freeze_and_unfreeze_one_message(waiting: Waiting) -> None:
    name = waiting.names["single"]
    assert ok(queue(waiting.data_dir, "freeze", "--message", name)) == "1 message frozen.\n"
    assert waiting.state_file("single")["frozen"] is True
    assert waiting.state_file("pair")["frozen"] is False
    assert not (waiting.root / "hops.json").exists()  # the queue itself is not frozen
    shown = json.loads(ok(queue(waiting.data_dir, "show", "Partner", "--json")))
    assert {m["id"]: m["frozen"] for m in shown["message_list"]} == {
        waiting.names["pair"]: False,
        name: True,
    }
    assert "frozen" in ok(queue(waiting.data_dir, "show", "Partner"))

    # By its queue id (the one in the tracking log and Received), as well as by its file name.
    queue_id = shown["message_list"][1 if shown["message_list"][1]["id"] == name else 0]
    assert ok(queue(waiting.data_dir, "unfreeze", "--message", queue_id["queue_id"])) == (
        "1 message unfrozen.\n"
    )
    assert waiting.state_file("single")["frozen"] is False


def test_retry_clears_the_next_retry_time(waiting: Waiting) -> None:
    assert waiting.state_file("pair")["next_retry"] > time.time()
    assert ok(queue(waiting.data_dir, "retry", "Partner")) == "2 messages to be retried now.\n"
    assert waiting.state_file("pair")["next_retry"] == 0
    assert waiting.state_file("single")["next_retry"] == 0
    assert waiting.state_file("backup")["next_retry"] > time.time()  # another queue
    hops = listed(waiting.data_dir)
    assert (hops["Partner"]["state"], hops["Partner"]["next_retry"]) == ("Ready", None)
    assert hops["Backup"]["state"] == "Retry"

    assert ok(queue(waiting.data_dir, "retry")) == "3 messages to be retried now.\n"  # all
    assert waiting.state_file("backup")["next_retry"] == 0


def test_delete_without_and_with_an_ndr(waiting: Waiting) -> None:
    pair = waiting.names["pair"]
    assert ok(queue(waiting.data_dir, "delete", "--message", pair)) == (
        "Deleted 2 recipient(s) of 1 message without an NDR.\n"
    )
    assert not (waiting.root / "active" / pair).exists()
    assert not (waiting.root / "state" / pair).exists()
    assert waiting.active() == {waiting.names["single"], waiting.names["backup"]}

    assert ok(queue(waiting.data_dir, "delete", "Partner", "--ndr")) == (
        "Deleted 1 recipient(s) of 1 message with an NDR.\n"
    )
    assert waiting.names["single"] not in waiting.active()
    [ndr] = [load for load in load_items(waiting.root) if load.name != waiting.names["backup"]]
    assert (ndr.entry.sender, ndr.entry.recipients) == ("", (SENDER,))
    assert list(listed(waiting.data_dir)) == ["Backup", "Local delivery"]

    # A queue running delivers the NDR to the sender's Maildir: one, about c@ only.
    running = start(waiting.store)
    try:
        [notice] = wait_for(lambda: notices(waiting.store), what="the NDR in the Maildir")
        wait_for(lambda: waiting.active() == {waiting.names["backup"]}, what="the NDR sent")
    finally:
        running.service.stop()
    assert failed_recipients(notice) == {"c@far.test": "5.3.0"}
    assert len(notices(waiting.store)) == 1


def test_a_frozen_queue_that_emptied_can_still_be_unfrozen(waiting: Waiting) -> None:
    ok(queue(waiting.data_dir, "freeze", "Backup"))
    ok(queue(waiting.data_dir, "delete", "Backup"))
    # Mail that arrives later for Backup would wait in a frozen queue: it must stay in sight.
    assert listed(waiting.data_dir)["Backup"] == {
        "name": "Backup",
        "state": "Frozen",
        "messages": 0,
        "size": 0,
        "oldest": None,
        "next_retry": None,
        "last_error": "",
    }
    assert ok(queue(waiting.data_dir, "unfreeze", "backup")) == (
        "Queue 'Backup' unfrozen (0 messages).\n"
    )
    assert json.loads((waiting.root / "hops.json").read_bytes()) == {"frozen": []}
    assert list(listed(waiting.data_dir)) == ["Partner"]


# -- postroom serve running: the request is handed to the running queue --------------------------


def test_the_running_queue_carries_out_each_action(waiting: Waiting) -> None:
    serve = Serve(waiting.data_dir).wait_listening()
    try:
        wait_for(lambda: not _lock_free(waiting.root), what="the running queue to own the queue")
        control = waiting.root / "control"

        assert ok(queue(waiting.data_dir, "freeze", "Partner")) == (
            "Queue 'Partner' frozen (2 messages).\n"
        )
        assert control.is_dir()  # the request went through control/ ...
        assert os.listdir(control) == []  # ... and was answered and cleared away
        assert json.loads((waiting.root / "hops.json").read_bytes()) == {"frozen": ["Partner"]}
        assert listed(waiting.data_dir)["Partner"]["state"] == "Frozen"
        assert ok(queue(waiting.data_dir, "unfreeze", "Partner")) == (
            "Queue 'Partner' unfrozen (2 messages).\n"
        )
        assert listed(waiting.data_dir)["Partner"]["state"] == "Retry"

        single = waiting.names["single"]
        assert ok(queue(waiting.data_dir, "freeze", "--message", single)) == "1 message frozen.\n"
        assert waiting.state_file("single")["frozen"] is True
        assert ok(queue(waiting.data_dir, "unfreeze", "--message", single)) == (
            "1 message unfrozen.\n"
        )
        assert waiting.state_file("single")["frozen"] is False

        # Force Connection: the running queue tries at once, fails again, waits the interval.
        assert ok(queue(waiting.data_dir, "retry", "Backup")) == "1 message to be retried now.\n"
        wait_for(lambda: waiting.state_file("backup")["attempts"] == 2, what="a second attempt")
        assert waiting.state_file("backup")["next_retry"] > time.time() + 3000
        assert waiting.state_file("pair")["attempts"] == 1

        # A refusal comes back from the running queue as one line, and nothing changes.
        before = waiting.files()
        line = refused(queue(waiting.data_dir, "delete", "--message", "no-such-message"))
        assert line == (
            "The message no-such-message is not in the queue (it may have been sent or "
            "deleted meanwhile). See postroom queue list."
        )
        assert waiting.files() == before

        pair = waiting.names["pair"]
        assert ok(queue(waiting.data_dir, "delete", "--message", pair, "--ndr")) == (
            "Deleted 2 recipient(s) of 1 message with an NDR.\n"
        )
        [notice] = wait_for(lambda: notices(waiting.store), what="the NDR in the Maildir")
        assert failed_recipients(notice) == {"a@far.test": "5.3.0", "b@far.test": "5.3.0"}
        assert pair not in waiting.active()
        assert os.listdir(control) == []
    finally:
        code, _, err = serve.finish()
    assert code == 0, err


def _lock_free(root: Path) -> bool:
    with state.QueueLock(root).held() as mine:
        return mine


# -- bad input ----------------------------------------------------------------------------------


def test_an_unknown_queue_is_refused_naming_the_known_ones(waiting: Waiting) -> None:
    before = waiting.files()
    for action in ("show", "freeze", "retry", "delete"):
        line = refused(queue(waiting.data_dir, action, "Nowhere"))
        assert line == "There is no queue 'Nowhere'. The queues: Backup, Partner."
    assert waiting.files() == before


def test_an_unknown_message_is_refused_and_nothing_changes(waiting: Waiting) -> None:
    before = waiting.files()
    for action in ("freeze", "retry", "delete"):
        line = refused(queue(waiting.data_dir, action, "--message", "1234.M1P1.gone"))
        assert line.startswith("The message 1234.M1P1.gone is not in the queue")
    assert waiting.files() == before


def test_delete_needs_a_queue_or_a_message(waiting: Waiting) -> None:
    before = waiting.files()
    assert refused(queue(waiting.data_dir, "delete")) == "Say which message or queue to delete."
    assert refused(queue(waiting.data_dir, "freeze", "--json")) == (
        "Say which message or queue to freeze."
    )
    assert waiting.files() == before


def test_a_queue_and_a_message_together_are_refused(waiting: Waiting) -> None:
    before = waiting.files()
    line = refused(queue(waiting.data_dir, "delete", "Partner", "--message", waiting.names["pair"]))
    assert line == "Name a message or a queue, not both."
    assert waiting.files() == before


@pytest.mark.parametrize("action", ["retry", "freeze", "unfreeze"])
def test_ndr_is_an_option_of_delete_only(waiting: Waiting, action: str) -> None:
    before = waiting.files()
    result = queue(waiting.data_dir, action, "Partner", "--ndr")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "unrecognized arguments: --ndr" in result.stderr
    assert waiting.files() == before


def test_usage_errors_exit_2(store: Store) -> None:
    for args in (("list", "extra"), ("show",), ("bounce", "Partner"), ()):
        result = queue(store.paths.root, *args)
        assert result.returncode == 2, args
        assert result.stdout == "" and "usage: " in result.stderr


def test_empty_queues(store: Store) -> None:
    assert ok(queue(store.paths.root, "list")) == "The queues are empty.\n"
    assert json.loads(ok(queue(store.paths.root, "list", "--json"))) == []
    assert refused(queue(store.paths.root, "show", "Partner")) == (
        "There is no queue 'Partner'. The queues: none: the queues are empty."
    )
    assert refused(queue(store.paths.root, "freeze", "Partner")).startswith("There is no queue")
    assert not (store.paths.queue / "hops.json").exists()
    # Retry with nothing named and nothing waiting does nothing, and says so.
    assert ok(queue(store.paths.root, "retry")) == "0 messages to be retried now.\n"


# -- postroom connector delete ------------------------------------------------------------------


def test_connector_delete_refused_while_mail_waits_for_it(waiting: Waiting) -> None:
    data_dir = waiting.data_dir
    line = refused(postroom(data_dir, "connector", "delete", "partner"))
    assert line.startswith("2 messages are queued for the SMTP connector 'Partner'. ")
    assert "--force" in line
    assert refused(postroom(data_dir, "connector", "delete", "Backup")).startswith(
        "1 message is queued for the SMTP connector 'Backup'. "
    )
    names = [c["name"] for c in json.loads(ok(postroom(data_dir, "connector", "list", "--json")))]
    assert names == ["Backup", "Partner"]

    # Once its queue is empty the connector goes without --force.
    ok(queue(data_dir, "delete", "Backup"))
    assert ok(postroom(data_dir, "connector", "delete", "Backup")) == (
        "Deleted SMTP connector 'Backup'.\n"
    )
    assert ok(postroom(data_dir, "connector", "delete", "Partner", "--force")) == (
        "Deleted SMTP connector 'Partner'.\n"
    )
    assert ok(postroom(data_dir, "connector", "list")) == "No SMTP connectors.\n"
    assert len(waiting.active()) == 2  # the mail stays queued: --force deletes the connector only
