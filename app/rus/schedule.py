"""When the Recipient Update Service runs by itself: the update interval or a weekly grid."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args

from app.errors import PostroomError
from app.store import Store
from app.store import settings as setting_rows

log = logging.getLogger(__name__)

SETTING_KEY = "rus_schedule"

ScheduleMode = Literal["always", "1h", "2h", "4h", "never", "custom"]
MODES: tuple[ScheduleMode, ...] = get_args(ScheduleMode)
MODE_LABELS: dict[ScheduleMode, str] = {
    "always": "Always run",
    "1h": "Run every hour",
    "2h": "Run every 2 hours",
    "4h": "Run every 4 hours",
    "never": "Never run",
    "custom": "Use custom schedule",
}
INTERVALS: dict[ScheduleMode, timedelta] = {
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
}
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_ABBREVIATIONS = {name[:3].lower(): index for index, name in enumerate(DAY_NAMES)}

Week = tuple[tuple[bool, ...], ...]
"""Seven days (Monday first) of 24 hours each, in local time; True runs in that hour."""
EMPTY_WEEK: Week = tuple((False,) * 24 for _ in range(7))

NEVER_WARNING = (
    "With 'Never run', new and changed recipients get no e-mail addresses, and applied policies "
    "change nothing, until someone chooses Update Now or Rebuild."
)


@dataclass(frozen=True)
class Schedule:
    """The update interval of the Recipient Update Service (its Properties page in Exchange).

    ``always``: within seconds of any change, from any process. ``1h``/``2h``/``4h``: when no
    run (by any process) has started for that long. ``custom``: once in each hour ticked in
    ``week``. ``never``: only on request. Update Now and Rebuild work with every schedule.
    """

    mode: ScheduleMode = "always"
    week: Week = field(default=EMPTY_WEEK)

    @property
    def label(self) -> str:
        return MODE_LABELS[self.mode]

    @property
    def warning(self) -> str | None:
        """What the console warns about when this schedule is chosen, if anything."""
        return NEVER_WARNING if self.mode == "never" else None

    def describe(self) -> str:
        if self.mode == "custom":
            return f"{self.label}: {format_week(self.week)}"
        return self.label

    def is_due(self, now: datetime, last_started: datetime | None) -> bool:
        """Whether a scheduled run should start now (interval and custom modes only).

        ``now`` and ``last_started`` are aware datetimes; the weekly grid is read in ``now``'s
        time zone.
        """
        interval = INTERVALS.get(self.mode)
        if interval is not None:
            return last_started is None or now - last_started >= interval
        if self.mode == "custom":
            if not self.week[now.weekday()][now.hour]:
                return False
            slot = now.replace(minute=0, second=0, microsecond=0)
            return last_started is None or last_started < slot
        return False

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mode": self.mode}
        if self.mode == "custom":
            data["week"] = [[int(hour) for hour in day] for day in self.week]
        return data

    @classmethod
    def from_json(cls, data: Any) -> Schedule:
        """The schedule stored as ``as_json`` wrote it; raises PostroomError if it is not one."""
        if not isinstance(data, dict) or data.get("mode") not in MODES:
            raise PostroomError(f"{data!r} is not a Recipient Update Service schedule.")
        mode = cast(ScheduleMode, data["mode"])
        if mode != "custom":
            return cls(mode)
        return make_schedule(mode, _week_from_json(data.get("week")))


def _week_from_json(data: Any) -> Week:
    if (
        not isinstance(data, list)
        or len(data) != 7
        or not all(isinstance(day, list) and len(day) == 24 for day in data)
    ):
        raise PostroomError("A custom schedule needs 7 days of 24 hours.")
    return tuple(tuple(bool(hour) for hour in day) for day in data)


def make_schedule(mode: str, week: Week | None = None) -> Schedule:
    """A checked schedule; a custom one needs at least one ticked hour."""
    if mode not in MODES:
        raise PostroomError(
            f"'{mode}' is not an update interval. Use one of: {', '.join(MODES)} "
            "(always, every 1, 2 or 4 hours, never, or custom hours)."
        )
    if mode != "custom":
        return Schedule(cast(ScheduleMode, mode))
    if week is None or len(week) != 7 or any(len(day) != 24 for day in week):
        raise PostroomError("A custom schedule needs 7 days of 24 hours.")
    if not any(any(day) for day in week):
        raise PostroomError(
            "The custom schedule has no hour selected, so the service would never run. "
            "Select at least one hour, e.g. mon-fri 8-17."
        )
    return Schedule("custom", tuple(tuple(bool(h) for h in day) for day in week))


def load_schedule(store: Store) -> Schedule:
    """The stored schedule; 'Always run' when none was set (or the stored one is unreadable)."""
    with store.read() as conn:
        stored = setting_rows.load_settings(conn).get(SETTING_KEY)
    if stored is None:
        return Schedule()
    try:
        return Schedule.from_json(stored)
    except PostroomError as error:
        log.warning("ignoring the stored RUS schedule: %s", error)
        return Schedule()


def save_schedule(store: Store, schedule: Schedule) -> None:
    """Store the schedule; running services pick it up within seconds."""
    checked = make_schedule(schedule.mode, schedule.week)
    with store.write() as conn:
        setting_rows.save_setting(conn, SETTING_KEY, checked.as_json())
    log.info("RUS schedule set to %s", checked.describe())


# -- the weekly grid as text: "mon-fri 8-17; sat 10" ----------------------------------------

_ENTRY = re.compile(r"^\s*(\S+)\s+(\S+)\s*$")


def parse_week(text: str) -> Week:
    """Hours of the week from text such as ``mon-fri 8-17; sat 10,14`` (hours 0-23, inclusive).

    Days: ``mon`` … ``sun``, ranges ``mon-fri``, lists ``mon,wed``, or ``daily``.
    """
    grid = [[False] * 24 for _ in range(7)]
    entries = [entry for entry in text.split(";") if entry.strip()]
    if not entries:
        raise PostroomError(
            "Give the hours to run as DAYS HOURS, e.g. 'mon-fri 8-17' or 'daily 2; sat 10,14'."
        )
    for entry in entries:
        match = _ENTRY.match(entry)
        if match is None:
            raise PostroomError(
                f"'{entry.strip()}' is not DAYS HOURS. Write e.g. 'mon-fri 8-17' or 'daily 2'."
            )
        days = _parse_list(match[1], _day, "day", "mon-fri")
        hours = _parse_list(match[2], _hour, "hour", "8-17")
        for day in days:
            for hour in hours:
                grid[day][hour] = True
    return tuple(tuple(day) for day in grid)


def _day(text: str) -> int:
    index = _DAY_ABBREVIATIONS.get(text.lower()[:3])
    if index is None or not DAY_NAMES[index].lower().startswith(text.lower()):
        raise PostroomError(f"'{text}' is not a day. Use mon, tue, wed, thu, fri, sat or sun.")
    return index


def _hour(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 23:
        raise PostroomError(f"'{text}' is not an hour. Use 0 to 23.")
    return int(text)


def _parse_list(text: str, item: Callable[[str], int], what: str, example: str) -> list[int]:
    if what == "day" and text.lower() in ("daily", "all", "every"):
        return list(range(7))
    result: list[int] = []
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if not first or (dash and not last):
            raise PostroomError(f"'{part}' is not a {what} or a range such as {example}.")
        low, high = item(first), item(last) if dash else item(first)
        if high < low:
            raise PostroomError(f"The range '{part}' runs backwards; write it as {example}.")
        result.extend(range(low, high + 1))
    return result


def format_week(week: Week) -> str:
    """The grid as ``parse_week`` reads it, days with the same hours grouped."""
    parts: list[str] = []
    day = 0
    while day < 7:
        hours = week[day]
        end = day
        while end + 1 < 7 and week[end + 1] == hours:
            end += 1
        if any(hours):
            days = DAY_NAMES[day][:3].lower()
            if end > day:
                days += "-" + DAY_NAMES[end][:3].lower()
            if day == 0 and end == 6:
                days = "daily"
            parts.append(f"{days} {_format_hours(hours)}")
        day = end + 1
    return "; ".join(parts) or "(no hours)"


def _format_hours(hours: tuple[bool, ...]) -> str:
    ranges: list[str] = []
    hour = 0
    while hour < 24:
        if hours[hour]:
            end = hour
            while end + 1 < 24 and hours[end + 1]:
                end += 1
            ranges.append(str(hour) if end == hour else f"{hour}-{end}")
            hour = end + 1
        else:
            hour += 1
    return ",".join(ranges)
