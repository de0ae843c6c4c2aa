"""The SMTP virtual server's Delivery settings: retries, delay notification, expiry, outbound
connections, the NDR copy; in the engine and through ``postroom smtp show / set``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.errors import PostroomError
from app.settings import (
    Settings,
    describe_duration,
    format_duration,
    load_settings,
    parse_duration,
    save_settings,
)
from app.store import Store
from app.store import settings as rows


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    status = main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_defaults_are_exchanges(store: Store) -> None:
    settings = load_settings(store)
    assert settings.retry_intervals == [15 * 60, 30 * 60, 60 * 60, 240 * 60]
    assert settings.delay_notification == 12 * 3600
    assert settings.expiration_timeout == 2 * 86400
    assert settings.outbound_connections == 1000
    assert settings.outbound_connections_per_domain == 100
    assert settings.outbound_timeout == 600
    assert settings.outbound_port == 25
    assert settings.ndr_copy_to == ""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("900", 900),
        (900, 900),
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1d12h", 129600),
        (" 15 m ", 900),
        ("1D 12H", 129600),
        ("1", 1),
    ],
)
def test_durations_read_seconds_or_a_unit(text: Any, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1.5h", "15w", "h", "15mm", "1e3", True, "0x10"])
def test_a_duration_that_is_not_one_is_refused(text: Any) -> None:
    with pytest.raises(PostroomError) as refused:
        parse_duration(text)
    assert str(refused.value) == (
        f"'{text}' is not a duration: write seconds or a number with a unit: "
        "30s, 15m, 2h, 1d (or 1d12h)."
    )


@pytest.mark.parametrize("seconds", [1, 59, 60, 900, 3661, 129600, 30 * 86400])
def test_format_duration_reads_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_durations_in_words() -> None:
    assert describe_duration(43200) == "12 hours"
    assert describe_duration(5400) == "1 hour 30 minutes"
    assert describe_duration(86401) == "1 day 1 second"
    assert format_duration(900) == "15m" and format_duration(129600) == "1d12h"


def test_units_and_lists_are_stored_as_seconds(store: Store) -> None:
    settings = save_settings(
        store,
        retry_intervals="10m, 20m, 1h, 6h",
        delay_notification="4h",
        expiration_timeout="3d",
        outbound_timeout="90s",
        outbound_connections="50",
        outbound_connections_per_domain=5,
        outbound_port="2526",
        ndr_copy_to=" Admin@Example.COM ",
    )
    assert settings.retry_intervals == [600, 1200, 3600, 21600]
    assert settings.delay_notification == 4 * 3600
    assert settings.expiration_timeout == 3 * 86400
    assert settings.outbound_timeout == 90
    assert (settings.outbound_connections, settings.outbound_connections_per_domain) == (50, 5)
    assert settings.outbound_port == 2526
    assert settings.ndr_copy_to == "Admin@example.com"
    assert load_settings(store) == settings


def test_tests_can_use_one_second(store: Store) -> None:
    settings = save_settings(
        store, retry_intervals=[1, 1, 1, 1], delay_notification="1s", expiration_timeout="2s"
    )
    assert settings.retry_intervals == [1, 1, 1, 1]
    assert (settings.delay_notification, settings.expiration_timeout) == (1, 2)


def test_the_ndr_copy_can_be_cleared(store: Store) -> None:
    save_settings(store, ndr_copy_to="postmaster@example.com")
    assert save_settings(store, ndr_copy_to="").ndr_copy_to == ""


BAD_INPUT = [
    (
        {"retry_intervals": "15m,0,1h,4h"},
        "retry_intervals: The second retry interval of 0 seconds is refused: use at least "
        "1 second.",
    ),
    (
        {"retry_intervals": [0, 60, 60, 60]},
        "retry_intervals: The first retry interval of 0 seconds is refused: use at least 1 second.",
    ),
    (
        {"retry_intervals": "15m,30m,1h,-4h"},
        "retry_intervals: The subsequent retry interval of -14400 seconds is refused: use at "
        "least 1 second.",
    ),
    (
        {"retry_intervals": "15m,30m,1h"},
        "retry_intervals: Give 4 retry intervals (first, second, third, subsequent), e.g. "
        "15m,30m,1h,4h; 3 given.",
    ),
    (
        {"retry_intervals": "15m,30m,1h,4h,8h"},
        "retry_intervals: Give 4 retry intervals (first, second, third, subsequent), e.g. "
        "15m,30m,1h,4h; 5 given.",
    ),
    (
        {"retry_intervals": "15m,30m,1h,soon"},
        "retry_intervals: 'soon' is not a duration: write seconds or a number with a unit: "
        "30s, 15m, 2h, 1d (or 1d12h).",
    ),
    (
        {"retry_intervals": "15m,30m,1h,31d"},
        "retry_intervals: The subsequent retry interval of 31 days is out of range: use "
        "1 second to 30 days.",
    ),
    (
        {"delay_notification": "0"},
        "delay_notification: A delay notification of 0 seconds is refused: use at least 1 second.",
    ),
    (
        {"expiration_timeout": "-1d"},
        "expiration_timeout: An expiration timeout of -86400 seconds is refused: use at least "
        "1 second.",
    ),
    (
        {"outbound_timeout": "0m"},
        "outbound_timeout: An outbound time-out of 0 seconds is refused: use at least 1 second.",
    ),
    (
        {"outbound_timeout": "2d"},
        "outbound_timeout: An outbound time-out of 2 days is out of range: use 1 second to 1 day.",
    ),
    ({"outbound_connections": "0"}, "outbound_connections: 0 is out of range: use 1 to 100000."),
    (
        {"outbound_connections_per_domain": "many"},
        "outbound_connections_per_domain: 'many' is not a whole number.",
    ),
    ({"outbound_port": "65536"}, "outbound_port: 65536 is out of range: use 1 to 65535."),
    ({"outbound_port": "0"}, "outbound_port: 0 is out of range: use 1 to 65535."),
    (
        {"ndr_copy_to": "postmaster"},
        "ndr_copy_to: The address 'postmaster' has no '@'; enter it as local-part@domain, "
        "e.g. jsmith@example.com.",
    ),
    (
        {"delay_notification": "3d"},
        "The expiration timeout (2 days) must be longer than the delay notification (3 days): "
        "lengthen expiration_timeout or shorten delay_notification.",
    ),
    (
        {"expiration_timeout": "12h"},
        "The expiration timeout (12 hours) must be longer than the delay notification "
        "(12 hours): lengthen expiration_timeout or shorten delay_notification.",
    ),
    (
        {"delay_notification": "1d", "expiration_timeout": "1h"},
        "The expiration timeout (1 hour) must be longer than the delay notification (1 day): "
        "lengthen expiration_timeout or shorten delay_notification.",
    ),
    (
        {"outbound_connections_per_domain": 1001},
        "The outbound connections per domain (1001) may not exceed the outbound connection "
        "limit (1000): lower outbound_connections_per_domain or raise outbound_connections.",
    ),
    (
        {"outbound_connections": 99},
        "The outbound connections per domain (100) may not exceed the outbound connection "
        "limit (99): lower outbound_connections_per_domain or raise outbound_connections.",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_INPUT)
def test_bad_input_is_refused_and_nothing_is_stored(
    store: Store, changes: dict[str, Any], message: str
) -> None:
    save_settings(store, banner="Before")
    before = load_settings(store)
    with store.read() as conn:
        rows_before = rows.load_settings(conn)
    with pytest.raises(PostroomError) as refused:
        save_settings(store, banner="After", **changes)
    assert str(refused.value) == message
    assert "\n" not in message
    assert load_settings(store) == before
    with store.read() as conn:
        assert rows.load_settings(conn) == rows_before


def test_cross_field_rules_pass_when_changed_together(store: Store) -> None:
    settings = save_settings(store, delay_notification="3d", expiration_timeout="4d")
    assert (settings.delay_notification, settings.expiration_timeout) == (3 * 86400, 4 * 86400)
    settings = save_settings(store, outbound_connections=10, outbound_connections_per_domain=10)
    assert (settings.outbound_connections, settings.outbound_connections_per_domain) == (10, 10)


def test_load_stays_tolerant_of_unreadable_values(store: Store) -> None:
    with store.write() as conn:
        rows.save_setting(conn, "retry_intervals", [60, 60])
        rows.save_setting(conn, "delay_notification", "soon")
        rows.save_setting(conn, "outbound_port", 0)
        rows.save_setting(conn, "ndr_copy_to", "nobody")
        rows.save_setting(conn, "expiration_timeout", 7200)
    settings = load_settings(store)
    default = Settings()
    assert settings.retry_intervals == default.retry_intervals
    assert settings.delay_notification == default.delay_notification
    assert settings.outbound_port == default.outbound_port
    assert settings.ndr_copy_to == ""
    assert settings.expiration_timeout == 7200


# --- the command line ---------------------------------------------------------------------------


def test_show_lists_durations_as_set_reads_them(
    capsys: pytest.CaptureFixture[str], data_dir: Path, store: Store
) -> None:
    status, out, _ = run(capsys, data_dir, "smtp", "show")
    assert status == 0
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    assert lines["retry_intervals"] == "15m,30m,1h,4h"
    assert lines["delay_notification"] == "12h"
    assert lines["expiration_timeout"] == "2d"
    assert lines["outbound_timeout"] == "10m"
    assert lines["outbound_connections"] == "1000"
    assert lines["outbound_connections_per_domain"] == "100"
    assert lines["outbound_port"] == "25"
    status, out, _ = run(capsys, data_dir, "smtp", "show", "--json")
    shown = json.loads(out)["settings"]
    assert shown["retry_intervals"] == [900, 1800, 3600, 14400]
    assert shown["delay_notification"] == 43200 and shown["ndr_copy_to"] == ""


def test_set_takes_units_and_lists(
    capsys: pytest.CaptureFixture[str], data_dir: Path, store: Store
) -> None:
    status, out, err = run(capsys, data_dir, "smtp", "set", "retry_intervals", "1m,2m,90s,1h")
    assert (status, err) == (0, "")
    assert out.startswith("retry_intervals = 1m,2m,1m30s,1h (")
    status, out, _ = run(capsys, data_dir, "smtp", "set", "expiration_timeout", "5d", "--json")
    assert status == 0 and json.loads(out) == {"expiration_timeout": 5 * 86400}
    status, out, _ = run(capsys, data_dir, "smtp", "set", "delay_notification", "3d")
    assert status == 0 and out.startswith("delay_notification = 3d (")
    status, out, _ = run(capsys, data_dir, "smtp", "set", "ndr_copy_to", "admin@example.com")
    assert status == 0 and out.startswith("ndr_copy_to = admin@example.com (")
    settings = load_settings(store)
    assert settings.retry_intervals == [60, 120, 90, 3600]
    assert (settings.delay_notification, settings.expiration_timeout) == (3 * 86400, 5 * 86400)
    assert settings.ndr_copy_to == "admin@example.com"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "delay_notification",
            "3d",
            "The expiration timeout (2 days) must be longer than the delay notification "
            "(3 days): lengthen expiration_timeout or shorten delay_notification.",
        ),
        (
            "retry_intervals",
            "0,30m,1h,4h",
            "retry_intervals: The first retry interval of 0 seconds is refused: use at least "
            "1 second.",
        ),
        (
            "outbound_connections_per_domain",
            "2000",
            "The outbound connections per domain (2000) may not exceed the outbound connection "
            "limit (1000): lower outbound_connections_per_domain or raise outbound_connections.",
        ),
        ("outbound_port", "99999", "outbound_port: 99999 is out of range: use 1 to 65535."),
    ],
)
def test_set_refuses_with_one_line_and_stores_nothing(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    store: Store,
    key: str,
    value: str,
    message: str,
) -> None:
    before = load_settings(store)
    status, out, err = run(capsys, data_dir, "smtp", "set", key, value)
    assert status == 1 and out == ""
    assert err == f"postroom: {message}\n"
    assert load_settings(store) == before
