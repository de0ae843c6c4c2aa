"""``postroom rus update|rebuild|status|explain|schedule``: text, JSON, exit codes, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import organization, policies
from app.cli import main
from app.directory import recipients
from app.store import Store
from app.store import rus as rus_rows
from tests.conftest import ROOT


def postroom(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    status = main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def org(data_dir: Path) -> Path:
    """A data directory with a Sales policy and two recipients, not yet stamped."""
    store = Store.open(data_dir)
    try:
        organization.initialize(store, "Test Organization", "example.com")
        policies.create_policy(store, "Sales", "(department=Sales)")
        policies.add_rule(store, "Sales", "%g.%s@sales.example.com")
        policies.add_rule(store, "Sales", "@example.org", enabled=False)
        recipients.create_recipient(
            store, "anna", attributes={"givenName": "Anna", "sn": "Berg", "department": "Sales"}
        )
        recipients.create_recipient(
            store, "anna2", attributes={"givenName": "Anna", "sn": "Berg", "department": "Sales"}
        )
        recipients.create_recipient(store, "fixed", auto_update=False)
    finally:
        store.close()
    return data_dir


def test_update_then_explain_then_status(capsys: pytest.CaptureFixture[str], org: Path) -> None:
    status, out, err = cli(capsys, org, "rus", "update")
    assert status == 0, err
    assert out.startswith("Update Now: examined 3, changed 2, errors 0, in ")

    status, out, _ = cli(capsys, org, "rus", "explain", "anna2")
    assert status == 0
    assert "Effective policy: Sales (priority 1, filter (department=Sales))" in out
    assert "stamped with 'Sales', because it had never been stamped" in out
    assert "SMTP:Anna.Berg2@sales.example.com" in out
    assert (
        "made by the rule %g.%s@sales.example.com of 'Sales' in run 1, with collision suffix 2 "
        "because Anna.Berg@sales.example.com belongs to 'anna'"
    ) in out
    assert "Rule @example.org (SMTP): unticked, so it generates nothing" in out

    status, out, _ = cli(capsys, org, "rus", "explain", "fixed")
    assert "skipped" in out and "is off" in out

    status, out, _ = cli(capsys, org, "rus", "status")
    assert status == 0
    assert "Update interval:  Always run" in out
    assert "Examined:         3" in out and "Changed:          2" in out
    assert "Status:           idle" in out


def test_json_output(capsys: pytest.CaptureFixture[str], org: Path) -> None:
    status, out, _ = cli(capsys, org, "rus", "rebuild", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["kind"] == "rebuild" and report["outcome"] == "completed"
    assert (report["examined"], report["changed"], report["errors"]) == (3, 2, 0)

    explained = json.loads(cli(capsys, org, "rus", "explain", "anna2", "--json")[1])
    assert explained["effective_policy"] == "Sales"
    assert explained["last_decision"]["decision"] == "stamped"
    (address,) = explained["addresses"]
    assert address == {
        "type": "SMTP",
        "address": "Anna.Berg2@sales.example.com",
        "primary": True,
        "policy": "Sales",
        "rule": "%g.%s@sales.example.com",
        "suffix": 2,
        "run": 1,
        "plain_address_owner": "anna",
        "explanation": address["explanation"],
    }

    status_json = json.loads(cli(capsys, org, "rus", "status", "--json")[1])
    assert status_json["last_run"]["id"] == 1
    assert status_json["schedule"] == {"mode": "always"}
    assert status_json["pending_policies"] == [] and status_json["work_waiting"] is False


def test_schedule_command(capsys: pytest.CaptureFixture[str], org: Path) -> None:
    assert cli(capsys, org, "rus", "schedule")[1] == "Always run\n"
    status, out, _ = cli(capsys, org, "rus", "schedule", "custom", "--hours", "mon-fri 8-17")
    assert status == 0 and out == "Update interval: Use custom schedule: mon-fri 8-17.\n"
    status, out, _ = cli(capsys, org, "rus", "schedule", "never")
    assert "Never run" in out and "until someone chooses Update Now or Rebuild" in out
    assert json.loads(cli(capsys, org, "rus", "schedule", "--json")[1]) == {"mode": "never"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rus", "explain", "nobody"], "There is no recipient with the alias 'nobody'."),
        (["rus", "schedule", "custom"], "A custom schedule needs its hours"),
        (["rus", "schedule", "custom", "--hours", "mon 25"], "'25' is not an hour. Use 0 to 23."),
        (["rus", "schedule", "1h", "--hours", "mon 8"], "--hours goes with the custom mode"),
    ],
)
def test_refusals_exit_1_with_one_line_and_change_nothing(
    org: Path, args: list[str], message: str
) -> None:
    done = postroom(org, *args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert postroom(org, "rus", "schedule").stdout == "Always run\n"


def test_usage_errors_exit_2(org: Path) -> None:
    assert postroom(org, "rus").returncode == 2
    assert postroom(org, "rus", "schedule", "sometimes").returncode == 2


def test_update_waits_its_turn_beside_another_process(org: Path) -> None:
    store = Store.open(org)
    try:
        with store.write() as conn:
            rus_rows.acquire_lease(conn, "serverhost:777:12345678", time.time(), 30)
        update = subprocess.Popen(
            [sys.executable, "-m", "app", "--data-dir", str(org), "rus", "update"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert update.stderr is not None
        said = update.stderr.readline()  # the event: it says that it waits
        assert update.poll() is None  # waiting, not racing
        with store.write() as conn:
            rus_rows.release_lease(conn, "serverhost:777:12345678")
        out, err = update.communicate(timeout=30)
    finally:
        store.close()
    assert update.returncode == 0, said + err
    assert "waiting for the Recipient Update Service run of process 777 on serverhost" in said
    assert out.startswith("Update Now: examined 3, changed 2")
