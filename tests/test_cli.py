"""The ``postroom`` command line: text and JSON output, exit codes, one-line refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from tests.conftest import ROOT


def postroom(
    data_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTROOM_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    status = main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_policy_commands_end_to_end(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    assert run(capsys, data_dir, "policy", "new", "Sales", "--filter", "(department=Sales)")[0] == 0
    status, out, _ = run(capsys, data_dir, "policy", "rule", "add", "Sales", "%g.%s@bücher.example")
    assert status == 0 and "%g.%s@bücher.example" in out
    run(
        capsys,
        data_dir,
        "policy",
        "rule",
        "add",
        "Sales",
        "@shared.example",
        "--not-responsible",
        "--disabled",
    )
    run(capsys, data_dir, "policy", "edit", "Sales", "--note", "Sales staff")
    status, out, _ = run(capsys, data_dir, "policy", "show", "Sales", "--json")
    shown = json.loads(out)
    assert shown["priority"] == "1" and shown["note"] == "Sales staff"
    assert [
        (r["address"], r["display_address"], r["enabled"], r["primary"], r["responsible"])
        for r in shown["rules"]
    ] == [
        ("%g.%s@xn--bcher-kva.example", "%g.%s@bücher.example", True, True, True),
        ("@shared.example", "@shared.example", False, False, False),
    ]
    run(capsys, data_dir, "policy", "new", "Staff")
    assert run(capsys, data_dir, "policy", "move", "Staff", "up")[0] == 0
    status, out, _ = run(capsys, data_dir, "policy", "list", "--json")
    assert [(p["name"], p["priority"]) for p in json.loads(out)] == [
        ("Staff", "1"),
        ("Sales", "2"),
        ("Default Policy", "Lowest"),
    ]
    status, out, _ = run(capsys, data_dir, "policy", "apply", "Sales", "--json")
    assert json.loads(out)["apply_pending"] is True
    assert run(capsys, data_dir, "policy", "rule", "enable", "Sales", "@shared.example")[0] == 0
    assert run(capsys, data_dir, "policy", "rule", "primary", "Sales", "@shared.example")[0] == 0
    assert (
        run(capsys, data_dir, "policy", "rule", "remove", "Sales", "%g.%s@bücher.example")[0] == 0
    )
    assert run(capsys, data_dir, "policy", "delete", "Staff")[0] == 0
    status, out, _ = run(capsys, data_dir, "policy", "list")
    assert "Staff" not in out and "Default Policy" in out


def test_recipient_commands_end_to_end(data_dir: Path) -> None:
    result = postroom(
        data_dir,
        "recipient",
        "new",
        "ann",
        "--given",
        "Ann",
        "--surname",
        "Lee",
        "--attr",
        "company=Contoso",
        "--password-stdin",
        "--json",
        stdin="s3cret\n",
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["maildir"] == str(data_dir / "mailboxes" / "ann")
    assert created["has_password"] is True and created["display_name"] == "Ann Lee"
    assert Path(created["maildir"], "new").is_dir()
    assert (
        postroom(
            data_dir,
            "recipient",
            "new",
            "partner",
            "--type",
            "contact",
            "--target",
            "p@partner.example",
        ).returncode
        == 0
    )
    assert (
        postroom(
            data_dir,
            "recipient",
            "new",
            "team",
            "--type",
            "group",
            "--member",
            "ann",
            "--member",
            "partner",
        ).returncode
        == 0
    )
    assert (
        postroom(data_dir, "recipient", "address", "add", "ann", "ann@example.com").returncode == 0
    )
    result = postroom(data_dir, "recipient", "edit", "ann", "--auto-update", "off", "--json")
    assert json.loads(result.stdout)["auto_update"] is False
    shown = json.loads(postroom(data_dir, "recipient", "show", "team", "--json").stdout)
    assert shown["members"] == ["ann", "partner"]
    listed = json.loads(postroom(data_dir, "recipient", "list", "--json").stdout)
    assert {r["alias"] for r in listed} == {"ann", "partner", "team"}
    assert postroom(data_dir, "recipient", "delete", "partner").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["policy", "delete", "Default Policy"], "cannot be deleted"),
        (["policy", "edit", "Default Policy", "--rename", "X"], "cannot be renamed"),
        (["policy", "move", "Default Policy", "up"], "cannot be moved"),
        (["policy", "rule", "remove", "Default Policy", "@example.com"], "cannot be removed"),
        (["policy", "show", "Nope"], "no recipient policy named 'Nope'"),
        (["policy", "new", "X", "--filter", "(&(sn=Smith)"], "at character 13"),
        (["policy", "rule", "add", "Default Policy", "%q@example.net"], "'%q'"),
        (["policy", "rule", "add", "Default Policy", "@*.example.net"], "wildcard"),
        (["recipient", "show", "ghost"], "no recipient with the alias 'ghost'"),
        (["recipient", "new", "bad alias"], "not a valid alias"),
        (["recipient", "new", "x", "--attr", "novalue"], "is not NAME=VALUE"),
    ],
)
def test_refusals_exit_1_with_one_line(data_dir: Path, args: list[str], message: str) -> None:
    result = postroom(data_dir, *args)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("postroom: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(data_dir: Path) -> None:
    assert postroom(data_dir, "policy").returncode == 2
    assert postroom(data_dir, "policy", "move", "X", "sideways").returncode == 2
    assert postroom(data_dir, "bogus").returncode == 2


def test_duplicate_address_from_the_command_line(data_dir: Path) -> None:
    postroom(data_dir, "recipient", "new", "ann")
    postroom(data_dir, "recipient", "new", "bob")
    assert postroom(data_dir, "recipient", "address", "add", "ann", "x@example.com").returncode == 0
    result = postroom(data_dir, "recipient", "address", "add", "bob", "X@EXAMPLE.COM")
    assert result.returncode == 1 and "already belongs to 'ann'" in result.stderr
    shown = json.loads(postroom(data_dir, "recipient", "show", "bob", "--json").stdout)
    assert shown["addresses"] == []


def test_data_directory_that_cannot_be_written(tmp_path: Path) -> None:
    target = Path("/proc/postroom-test") if os.geteuid() == 0 else tmp_path / "ro" / "data"
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o500)
    result = postroom(target, "policy", "list")
    assert result.returncode == 1
    assert "Cannot write to the data directory" in result.stderr


def test_data_dir_may_follow_the_subcommand(tmp_path: Path) -> None:
    after = tmp_path / "after"
    result = subprocess.run(
        [sys.executable, "-m", "app", "recipient", "new", "ann", "--data-dir", str(after)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (after / "mailboxes" / "ann" / "new").is_dir()
