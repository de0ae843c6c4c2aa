"""The Recipient Update Service's status as stored, readable from any process."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.rus.schedule import Schedule, load_schedule
from app.store import Store
from app.store import policies as policy_rows
from app.store import rus as rows
from app.store.rus import RunRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RusStatus:
    """Last run, the run under way (in any process), schedule and what waits to be done."""

    last_run: RunRecord | None
    running: RunRecord | None
    schedule: Schedule
    high_water_mark: int
    pending_policies: tuple[str, ...]
    work_waiting: bool


def read_status(store: Store) -> RusStatus:
    """The status any process can see: runs, progress, schedule, applied policies."""
    schedule = load_schedule(store)
    with store.read() as conn:
        holder = rows.lease_holder(conn, time.time())
        running = rows.last_run_of(conn, holder) if holder else None
        if running is not None and running.outcome != "running":
            running = None  # the lease is held, but its run has not been noted yet
        return RusStatus(
            last_run=rows.last_finished_run(conn),
            running=running,
            schedule=schedule,
            high_water_mark=rows.high_water_mark(conn),
            pending_policies=tuple(
                p.name for p in policy_rows.load_policies(conn) if p.apply_pending
            ),
            work_waiting=rows.has_work(conn),
        )


def run_errors(store: Store, run_id: int, limit: int = 10) -> list[tuple[str, str]]:
    """(alias, message) of recipients the run could not stamp (those still decided so)."""
    with store.read() as conn:
        return rows.error_aliases(conn, run_id, limit)


def last_run(store: Store) -> RunRecord | None:
    """The last finished run by any process (one short read)."""
    with store.read() as conn:
        return rows.last_finished_run(conn)
