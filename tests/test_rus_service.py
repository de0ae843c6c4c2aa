"""The Recipient Update Service thread: requests, coalescing, cancel, listeners and the schedule."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app import policies, rus
from app.directory import recipients
from app.errors import PostroomError
from app.rus import runner
from app.rus.schedule import (
    EMPTY_WEEK,
    NEVER_WARNING,
    Schedule,
    format_week,
    load_schedule,
    make_schedule,
    parse_week,
    save_schedule,
)
from app.rus.service import RecipientUpdateService, RusEvent
from app.store import Store
from app.store import settings as setting_rows
from tests.conftest import ROOT


@pytest.fixture
def services(store: Store) -> Iterator[Callable[..., RecipientUpdateService]]:
    """Make services on the test store; every one is stopped (thread joined) at teardown."""
    made: list[RecipientUpdateService] = []

    def make(**options: object) -> RecipientUpdateService:
        service = RecipientUpdateService(store, **options)  # type: ignore[arg-type]
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop()
        assert not service.is_running


class Clock:
    """The service's clock, set by the test; counts how often the service read it (once per
    look at a timed schedule), so a test can wait until the service has looked."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.now

    def looked(self, times: int = 2) -> None:
        """Wait until the service has read the clock ``times`` more times from now."""
        target = self.reads + times
        wait_for(lambda: self.reads >= target, 5)


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def stamped(store: Store, alias: str) -> bool:
    return bool(recipients.get_recipient(store, alias).addresses)


def test_a_change_from_another_process_is_picked_up_within_5_s(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    service = services()  # default schedule: Always run, default poll interval
    service.start()
    assert service.wait_until_idle(10)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--data-dir",
            str(store.paths.root),
            "recipient",
            "new",
            "bob",
            "--given",
            "Bob",
            "--surname",
            "Jones",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seconds = wait_for(lambda: stamped(store, "bob"), 5.0)
    assert recipients.get_recipient(store, "bob").primary_address() == "bob@example.com"
    assert seconds < 5.0


def test_requests_during_a_run_coalesce_into_one_more_run(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    save_schedule(store, make_schedule("never"))
    for n in range(6):
        recipients.create_recipient(store, f"u{n}")
    service = services(batch_size=1)
    reports: list[rus.RunRecord] = []
    gate = threading.Event()
    first_batch = threading.Event()

    def listener(event: RusEvent) -> None:
        if event.progress is not None and event.progress.done == 1:
            first_batch.set()
            gate.wait(5)  # hold the first run until the requests are in
        if event.report is not None:
            reports.append(event.report)

    service.add_listener(listener)
    service.start()
    service.request_update()
    assert first_batch.wait(5)
    for _ in range(5):
        service.request_update()
    service.request_rebuild()
    gate.set()
    assert service.wait_until_idle(10)

    assert [r.kind for r in reports] == ["update", "rebuild"]
    assert [r.examined for r in reports] == [6, 6]


def test_listeners_are_called_on_the_service_thread(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    save_schedule(store, make_schedule("never"))
    recipients.create_recipient(store, "a")
    service = services()
    events: list[tuple[str, str]] = []
    service.add_listener(lambda e: events.append((e.state, threading.current_thread().name)))
    service.start()
    service.request_update()
    assert service.wait_until_idle(10)

    assert ("running", "recipient-update-service") in events
    assert events[-1] == ("idle", "recipient-update-service")
    assert {name for _, name in events} == {"recipient-update-service"}
    assert service.last_report is not None and service.last_report.examined == 1
    assert service.state == "idle" and service.progress is None


def test_cancel_stops_a_run_between_batches(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    save_schedule(store, make_schedule("never"))
    for n in range(20):
        recipients.create_recipient(store, f"u{n:02d}")
    service = services(batch_size=2)

    def cancel_at_four(event: RusEvent) -> None:
        if event.progress is not None and event.progress.done == 4:
            service.cancel()

    service.add_listener(cancel_at_four)
    service.start()
    service.request_rebuild()
    assert service.wait_until_idle(10)

    report = service.last_report
    assert report is not None and report.outcome == "cancelled" and report.examined == 4
    assert sum(stamped(store, f"u{n:02d}") for n in range(20)) == 4


def test_always_run_does_not_restart_a_cancelled_run_by_itself(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    for n in range(10):
        recipients.create_recipient(store, f"u{n}")
    service = services(batch_size=1, poll_interval=0.05)
    runs: list[rus.RunRecord] = []

    def listener(event: RusEvent) -> None:
        if event.progress is not None and event.progress.done == 2 and not runs:
            service.cancel()
        if event.report is not None:
            runs.append(event.report)

    service.add_listener(listener)
    service.start()
    wait_for(lambda: bool(runs), 5)
    time.sleep(0.5)  # under test: ten polls go by and the service does not start again
    assert [r.outcome for r in runs] == ["cancelled"]

    recipients.create_recipient(store, "late")  # a new change: the service picks up again
    wait_for(lambda: len(runs) == 2 and runs[-1].outcome == "completed", 5)
    assert all(stamped(store, f"u{n}") for n in range(10)) and stamped(store, "late")


def test_never_run_leaves_changes_until_someone_asks(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    save_schedule(store, make_schedule("never"))
    service = services(poll_interval=0.05)
    service.start()
    recipients.create_recipient(store, "a")
    time.sleep(0.5)  # under test: ten polls see the change and none runs (nothing to wait for)
    assert not stamped(store, "a")
    service.request_update()
    assert service.wait_until_idle(10)
    assert stamped(store, "a")


def test_apply_this_policy_now_through_the_service(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    save_schedule(store, make_schedule("never"))
    recipients.create_recipient(store, "a")
    service = services()
    service.start()
    service.request_update()
    assert service.wait_until_idle(10)
    policies.add_rule(store, "Default Policy", "@example.net", primary=True)

    service.request_apply("Default Policy")
    assert service.wait_until_idle(10)

    assert recipients.get_recipient(store, "a").primary_address() == "a@example.net"
    with pytest.raises(PostroomError, match="no recipient policy named 'Nope'"):
        service.request_apply("Nope")


def test_an_hourly_schedule_runs_when_an_hour_has_passed(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    save_schedule(store, make_schedule("1h"))
    recipients.create_recipient(store, "a")
    rus.run(store)
    recipients.create_recipient(store, "b")
    clock = Clock(datetime.now(UTC))
    service = services(poll_interval=0.05, clock=clock)
    service.start()
    clock.looked()
    assert not stamped(store, "b")
    clock.now += timedelta(minutes=61)
    wait_for(lambda: stamped(store, "b"), 5)


def test_a_custom_schedule_runs_once_in_a_ticked_hour(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    monday_9 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    week = parse_week("mon 9")
    save_schedule(store, make_schedule("custom", week))
    clock = Clock(monday_9 - timedelta(hours=1))
    runs: list[rus.RunRecord] = []
    service = services(poll_interval=0.05, clock=clock)
    service.add_listener(lambda e: runs.append(e.report) if e.report else None)
    service.start()
    clock.looked()
    assert runs == []
    clock.now = monday_9
    wait_for(lambda: len(runs) == 1, 5)
    clock.looked(3)
    assert len(runs) == 1  # once per ticked hour


def test_stop_while_waiting_for_another_processs_run(
    store: Store, services: Callable[..., RecipientUpdateService]
) -> None:
    with store.write() as conn:
        from app.store import rus as rus_rows

        rus_rows.acquire_lease(conn, "elsewhere:1:00000000", time.time(), 30)
    save_schedule(store, make_schedule("never"))
    service = services()
    states: list[RusEvent] = []
    service.add_listener(states.append)
    service.start()
    service.request_update()
    wait_for(lambda: any(e.state == "waiting" for e in states), 5)
    waiting = next(e for e in states if e.state == "waiting")
    assert waiting.waiting_for == "process 1 on elsewhere"
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 2
    assert states[-1].state == "stopped"


# -- the schedule ------------------------------------------------------------------------------


def test_schedule_default_and_round_trip(store: Store) -> None:
    assert load_schedule(store) == Schedule("always")
    week = parse_week("mon-fri 8-17; sat 10,14")
    save_schedule(store, make_schedule("custom", week))
    loaded = load_schedule(store)
    assert loaded.mode == "custom" and loaded.week == week
    assert format_week(loaded.week) == "mon-fri 8-17; sat 10,14"
    assert loaded.describe() == "Use custom schedule: mon-fri 8-17; sat 10,14"
    assert make_schedule("never").warning == NEVER_WARNING
    assert format_week(parse_week("daily 2")) == "daily 2"


def test_an_unreadable_stored_schedule_falls_back_to_always(store: Store) -> None:
    with store.write() as conn:
        setting_rows.save_setting(conn, "rus_schedule", {"mode": "sometimes"})
    assert load_schedule(store) == Schedule("always")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "Give the hours to run as DAYS HOURS"),
        ("monday", "is not DAYS HOURS"),
        ("mon 24", "'24' is not an hour. Use 0 to 23."),
        ("fri-mon 8", "runs backwards"),
        ("mun 8", "'mun' is not a day"),
        ("mon 8-", "is not a hour or a range"),
    ],
)
def test_bad_hours_are_refused_and_nothing_is_saved(store: Store, spec: str, message: str) -> None:
    with pytest.raises(PostroomError, match=message):
        save_schedule(store, make_schedule("custom", parse_week(spec)))
    assert load_schedule(store) == Schedule("always")


def test_bad_schedules_are_refused(store: Store) -> None:
    with pytest.raises(PostroomError, match="'sometimes' is not an update interval"):
        make_schedule("sometimes")
    with pytest.raises(PostroomError, match="no hour selected"):
        make_schedule("custom", EMPTY_WEEK)
    with pytest.raises(PostroomError, match="no hour selected"):
        save_schedule(store, Schedule("custom", EMPTY_WEEK))
    assert load_schedule(store) == Schedule("always")


def test_is_due() -> None:
    now = datetime(2026, 11, 25, 10, 15, tzinfo=UTC)  # a Wednesday
    hourly = make_schedule("1h")
    assert hourly.is_due(now, None)
    assert not hourly.is_due(now, now - timedelta(minutes=59))
    assert hourly.is_due(now, now - timedelta(minutes=60))
    assert not make_schedule("4h").is_due(now, now - timedelta(hours=3))
    custom = make_schedule("custom", parse_week("wed 10"))
    assert custom.is_due(now, now - timedelta(hours=1))
    assert not custom.is_due(now, now.replace(minute=1))
    assert not custom.is_due(now + timedelta(hours=1), None)
    assert not make_schedule("never").is_due(now, None)


def test_the_engine_is_importable_without_qt() -> None:
    code = (
        "import sys, app.rus, app.cli.rus\n"
        "assert not any(m.startswith('PySide6') for m in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_helper_is_not_used_in_a_frozen_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.rus import helper

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert not helper.helper_possible()
    assert runner.HELPER_MIN_OBJECTS == helper.HELPER_MIN_OBJECTS
