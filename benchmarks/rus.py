"""Benchmark the Recipient Update Service: Rebuild and Update Now on 100,000 recipients.

Builds a directory of N recipients (default 100,000) under three custom policies and the Default
Policy, 2-3 SMTP rules each, then measures, each in a fresh process so peak memory is its own:

- Rebuild: every recipient stamped from scratch (batched: thousands per transaction);
- Update Now with one changed recipient (a new one, which gets stamped, and an edited one, which
  is looked at and left alone), repeated;
- the naive baseline, measured in the same run on a copy of the same directory: the same engine
  writing one transaction per recipient (and so without the helper process).

Peak memory is the phase process's plus its helper process's, if it started one.

Targets (2 cores): Rebuild <= 5 s, Update Now <= 50 ms, peak memory <= 300 MB.

    .venv/bin/python benchmarks/rus.py [--recipients 100000] [--naive 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import organization, policies, rus  # noqa: E402
from app.directory import recipients  # noqa: E402
from app.model import Recipient  # noqa: E402
from app.rus.runner import BATCH_SIZE  # noqa: E402
from app.store import Store, directory  # noqa: E402
from app.store.database import next_usn  # noqa: E402

GIVEN = [
    "Anna", "Ben", "Carla", "David", "Eva", "Felix", "Greta", "Hans", "Ines", "Jonas", "Karin",
    "Lukas", "Marie", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Stefan", "Tina", "Uwe", "Vera",
    "Walter", "Xenia", "Yusuf", "Zoe", "Jürgen", "Renée", "Zoë", "Björn", "Åsa", "François",
]  # fmt: skip
SURNAMES = [f"{stem}{ending}" for stem in (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Braun",
    "Zimmermann", "Krüger", "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler",
) for ending in ("", "-Berg", "er", "mann", "s", "ke", "o'Neil", "ow")]  # fmt: skip
DEPARTMENTS = ["Sales", "Engineering", "Support", "Finance", "Marketing", "Legal"]
COMPANIES = ["Contoso", "Fabrikam", "Northwind", "Tailspin"]
CITIES = ["Berlin", "Hamburg", "Munich", "Vienna", "Zurich", "Paris"]

POLICIES = [
    (
        "Sales",
        "(department=Sales)",
        ["%g.%s@sales.example.com", "@example.com", "%1g%s@example.org"],
    ),
    ("Fabrikam", "(company=Fabrikam)", ["@fabrikam.example", "%g.%s@fabrikam.example"]),
    (
        "Berlin office",
        "(&(l=Berlin)(objectClass=user))",
        ["%g%s@berlin.example.de", "@example.com", "%r._%d@example.net"],
    ),
]


def build(data_dir: Path, count: int) -> None:
    """A fresh directory: the policies, and ``count`` recipients never stamped."""
    store = Store.open(data_dir)
    organization.initialize(store, "Benchmark", "example.com")
    policies.add_rule(store, "Default Policy", "%g.%s@example.com")
    for name, filter_text, rules in POLICIES:
        policies.create_policy(store, name, filter_text)
        for address in rules:
            policies.add_rule(store, name, address)
    rng = random.Random(42)
    stamp = policies.now()
    with store.write() as conn:
        for n in range(count):
            given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
            attributes = {
                "givenName": given,
                "sn": surname,
                "displayName": f"{given} {surname}",
                "department": rng.choice(DEPARTMENTS),
                "company": rng.choice(COMPANIES),
                "l": rng.choice(CITIES),
            }
            recipient = Recipient(
                alias=f"u{n:06d}", attributes=attributes, created=stamp, modified=stamp
            )
            directory.insert_recipient(conn, recipient, next_usn(conn), None)
    store.close()


def peak_mb() -> float:
    """Peak resident memory of this process plus that of its largest child (the RUS helper)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024  # Linux: KiB


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the helper), user and system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def phase_rebuild(data_dir: Path, batch_size: int) -> dict[str, Any]:
    store = Store.open(data_dir)
    before = peak_mb()
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    record = rus.run(
        store, "rebuild", batch_size=batch_size, helper=None if batch_size > 1 else False
    )
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    assert record is not None and record.outcome == "completed", record
    store.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "examined": record.examined,
        "changed": record.changed,
        "errors": record.errors,
        "peak_mb": peak_mb(),
        "peak_mb_before_run": before,
    }


def phase_update(data_dir: Path, batch_size: int, repeat: int) -> dict[str, Any]:
    store = Store.open(data_dir)
    times_new: list[float] = []
    times_edit: list[float] = []
    for n in range(repeat):
        recipients.create_recipient(
            store, f"bench{n}", attributes={"givenName": "Anna", "sn": "Müller"}
        )
        times_new.append(_timed_update(store, batch_size, expect_changed=1))
        recipients.edit_recipient(store, f"u{n * 997:06d}", attributes={"title": f"T{n}"})
        times_edit.append(_timed_update(store, batch_size, expect_changed=0))
    store.close()
    every = times_new + times_edit
    return {
        "median_ms": statistics.median(every) * 1000,
        "max_ms": max(every) * 1000,
        "new_median_ms": statistics.median(times_new) * 1000,
        "edit_median_ms": statistics.median(times_edit) * 1000,
        "runs": len(every),
        "peak_mb": peak_mb(),
    }


def _timed_update(store: Store, batch_size: int, expect_changed: int) -> float:
    start = time.perf_counter()
    record = rus.run(store, "update", batch_size=batch_size)
    seconds = time.perf_counter() - start
    assert record is not None and record.examined == 1, record
    assert record.changed == expect_changed, record
    return seconds


def child(phase: str, data_dir: Path, batch_size: int, repeat: int = 5) -> dict[str, Any]:
    """Run one phase in a fresh interpreter, so its peak memory is its own."""
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            phase,
            "--data-dir",
            str(data_dir),
            "--batch-size",
            str(batch_size),
            "--repeat",
            str(repeat),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--naive", type=int, default=None, help="recipients for the naive baseline (default: all)"
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--repeat", type=int, default=5, help="Update Now runs of each kind")
    parser.add_argument("--phase", choices=["rebuild", "update"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        if args.phase == "rebuild":
            result = phase_rebuild(args.data_dir, args.batch_size)
        else:
            result = phase_update(args.data_dir, args.batch_size, args.repeat)
        print(json.dumps(result))
        return 0

    naive_count = args.naive if args.naive is not None else args.recipients
    work = Path(tempfile.mkdtemp(prefix="postroom-bench-"))
    try:
        print(
            f"RUS benchmark: {args.recipients:,} recipients, 3 custom policies + Default Policy, "
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
        )
        start = time.perf_counter()
        build(work / "fast", args.recipients)
        if naive_count == args.recipients:
            shutil.copytree(work / "fast", work / "naive")
        else:
            build(work / "naive", naive_count)
        print(f"built in {time.perf_counter() - start:.1f} s")

        fast = child("rebuild", work / "fast", args.batch_size)
        fast_update = child("update", work / "fast", args.batch_size, args.repeat)
        naive = child("rebuild", work / "naive", 1)
        naive_update = child("update", work / "naive", 1, args.repeat)

        scale = args.recipients / naive_count
        naive_label = "naive (1 recipient per transaction)"
        if naive_count != args.recipients:
            naive_label += f", {naive_count:,} recipients, scaled x{scale:g}"
        print()
        print(f"{'':38} {'batched':>14} {'naive':>14}   target")
        print(
            f"{'Rebuild, seconds':38} {fast['seconds']:14.2f} "
            f"{naive['seconds'] * scale:14.2f}   <= 5 s"
        )
        print(
            f"{'Rebuild, CPU seconds (all processes)':38} {fast['cpu_seconds']:14.2f} "
            f"{naive['cpu_seconds'] * scale:14.2f}"
        )
        print(
            f"{'Rebuild, recipients/s':38} {fast['examined'] / fast['seconds']:14,.0f} "
            f"{naive['examined'] / naive['seconds']:14,.0f}"
        )
        print(
            f"{'Rebuild, peak memory MB':38} {fast['peak_mb']:14.1f} {naive['peak_mb']:14.1f}"
            "   <= 300 MB"
        )
        print(
            f"{'Update Now (1 changed), median ms':38} {fast_update['median_ms']:14.1f} "
            f"{naive_update['median_ms']:14.1f}"
        )
        print(
            f"{'Update Now (1 changed), max ms':38} {fast_update['max_ms']:14.1f} "
            f"{naive_update['max_ms']:14.1f}   <= 50 ms"
        )
        print(
            f"{'Update Now, peak memory MB':38} {fast_update['peak_mb']:14.1f} "
            f"{naive_update['peak_mb']:14.1f}"
        )
        print()
        print(
            f"batched: {args.batch_size} recipients per transaction; {naive_label}. "
            f"Rebuild examined {fast['examined']:,}, changed {fast['changed']:,}, "
            f"errors {fast['errors']}; "
            f"Update Now ran {fast_update['runs']} times (new recipient median "
            f"{fast_update['new_median_ms']:.1f} ms, edited recipient median "
            f"{fast_update['edit_median_ms']:.1f} ms)."
        )
        ok = (
            fast["seconds"] <= 5
            and fast_update["max_ms"] <= 50
            and max(fast["peak_mb"], fast_update["peak_mb"]) <= 300
        )
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
