"""The store: files and permissions, schema migrations, transactions, the change counter."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import organization, rus
from app.directory import recipients
from app.errors import PostroomError
from app.store import SCHEMA_VERSION, ConstraintError, DatabaseError, Store, database
from app.store import directory as directory_rows
from tests.conftest import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_data_directory_is_private(store: Store) -> None:
    assert mode(store.paths.root) == 0o700
    assert mode(store.paths.database) == 0o600
    assert mode(store.paths.mailboxes) == 0o700
    assert mode(store.paths.queue) == 0o700
    conn = store.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version() == SCHEMA_VERSION


def test_database_from_a_newer_version_is_refused(data_dir: Path) -> None:
    Store.open(data_dir).close()
    with sqlite3.connect(data_dir / "postroom.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(PostroomError, match="newer Postroom") as error:
        Store.open(data_dir)
    assert f"schema {SCHEMA_VERSION + 1}" in str(error.value)
    with sqlite3.connect(data_dir / "postroom.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_unwritable_data_directory_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/postroom-cannot-write-here")  # even root cannot create files in /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "data"
    with pytest.raises(PostroomError, match="Cannot write to the data directory"):
        Store.open(target)


def test_a_file_that_is_not_a_database_is_refused(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "postroom.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PostroomError, match="Postroom database"):
        Store.open(data_dir)


def test_a_failed_change_leaves_nothing_behind(store: Store) -> None:
    before = store.change_counter()
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute("UPDATE organization SET name = 'changed'")
        raise RuntimeError("boom")
    org = organization.get_organization(store)
    assert org is not None and org.name == "Test Organization"
    assert store.change_counter() == before


def test_change_counter_moves_only_on_changes(store: Store) -> None:
    before = store.change_counter()
    with store.write():
        pass
    assert store.change_counter() == before
    recipients.create_recipient(store, "ann")
    assert store.change_counter() == before + 1


def test_proxy_addresses_are_unique_in_the_database_itself(store: Store) -> None:
    ann = recipients.create_recipient(store, "ann")
    bob = recipients.create_recipient(store, "bob")
    conn = store.connection()
    conn.execute(
        "INSERT INTO proxy_addresses (recipient_id, type, address, is_primary)"
        " VALUES (?, 'SMTP', 'Ann@Example.com', 1)",
        (ann.id,),
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO proxy_addresses (recipient_id, type, address, is_primary)"
            " VALUES (?, 'smtp', 'ann@EXAMPLE.COM', 1)",
            (bob.id,),
        )


def _writer_script(data_dir: Path, prefix: str, count: int) -> list[str]:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from app.directory import recipients\n"
        "from app.store import Store\n"
        f"store = Store.open(Path({str(data_dir)!r}))\n"
        f"for n in range({count}):\n"
        f"    recipients.create_recipient(store, f'{prefix}{{n}}', attributes={{'sn': 'X'}})\n"
        "    recipients.add_address(store, f'"
        + prefix
        + "{n}', f'"
        + prefix
        + "{n}@example.com')\n"
    )
    return [sys.executable, "-c", code]


def test_two_processes_writing_at_once_lose_nothing(store: Store) -> None:
    counter = store.change_counter()
    procs = [
        subprocess.Popen(_writer_script(store.paths.root, prefix, 60), cwd=ROOT)
        for prefix in ("left", "right")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    found = {r.alias: r for r in recipients.list_recipients(store)}
    for prefix in ("left", "right"):
        for n in range(60):
            assert found[f"{prefix}{n}"].primary_address() == f"{prefix}{n}@example.com"
    # Every change of either process moved the shared counter.
    assert store.change_counter() == counter + 240
    usns = [r.usn for r in found.values()]
    assert len(set(usns)) == len(usns)


@pytest.fixture
def impatient_store(monkeypatch: pytest.MonkeyPatch, store: Store) -> Iterator[Store]:
    """A second Store on the same data directory that waits 0.1 s, not 30 s, for a lock."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 100)
    other = Store.open(store.paths.root)
    yield other
    other.close()


@pytest.fixture
def held_write_lock(impatient_store: Store) -> Iterator[None]:
    """Another program holds the database's write lock for the length of the test."""
    holder = sqlite3.connect(impatient_store.paths.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield
    holder.execute("ROLLBACK")
    holder.close()


@pytest.mark.usefixtures("held_write_lock")
def test_a_locked_database_is_a_database_error_that_names_the_cause(
    impatient_store: Store,
) -> None:
    with pytest.raises(DatabaseError, match="database is locked") as error:
        recipients.create_recipient(impatient_store, "ann")
    assert isinstance(error.value, PostroomError), "the CLI and the console show it as is"
    assert error.value.cause == "database is locked"
    assert not isinstance(error.value.__cause__, DatabaseError)  # the sqlite3 error, kept
    assert [r.alias for r in recipients.list_recipients(impatient_store)] == []


@pytest.mark.usefixtures("held_write_lock")
def test_a_rus_run_on_a_locked_database_says_why_it_cannot_start(impatient_store: Store) -> None:
    with pytest.raises(PostroomError, match="cannot start a run: database is locked"):
        rus.run(impatient_store, "rebuild")


def test_a_broken_uniqueness_rule_leaves_the_store_as_a_constraint_error(store: Store) -> None:
    ann = recipients.create_recipient(store, "ann")
    recipients.create_recipient(store, "bob")
    bob = recipients.get_recipient(store, "bob")
    before = store.change_counter()
    with pytest.raises(ConstraintError, match="UNIQUE constraint failed"), store.write() as conn:
        directory_rows.update_recipient(conn, dataclasses.replace(bob, alias=ann.alias), 0)
    assert recipients.get_recipient(store, "bob").alias == "bob"
    assert store.change_counter() == before


def test_sqlite_errors_inside_a_transaction_leave_as_database_errors(store: Store) -> None:
    with pytest.raises(DatabaseError, match="no such table: nowhere"), store.read() as conn:
        conn.execute("SELECT * FROM nowhere")
