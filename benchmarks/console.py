"""Benchmark the console's All Recipients list: open it with 100,000 recipients, scroll to the end.

Builds a directory of N recipients (default 100,000; each with a primary SMTP address, under
three custom policies and the Default Policy), then measures, each in a fresh process so peak
memory is its own:

- lazy: the real main window's All Recipients node (ids in order from the store, rows fetched
  a page at a time, the result pane's proxy leaving the sorting to the store);
- eager: the baseline, measured in the same run on the same directory: every recipient loaded
  (``list_recipients`` and each one's effective policy) into the console's ``RowTableModel``
  behind a plain ``QSortFilterProxyModel`` sorted by display name, as the other lists are;
- standard: a second baseline: the same rows copied into a ``QStandardItemModel`` (C++ items,
  sorted in C++ by its proxy).

"Open" is from asking for the list to its first screen painted. "Scroll" pages down to the last
row, painting every page (as holding Page Down does), and reports the time per painted page;
"jump" drags the scroll bar to the end and paints once.

    .venv/bin/python benchmarks/console.py [--recipients 100000]

Runs offscreen unless QT_QPA_PLATFORM says otherwise.
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
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app import organization, policies  # noqa: E402
from app.directory import recipients  # noqa: E402
from app.model import SMTP, ProxyAddress, Recipient  # noqa: E402
from app.store import Store, directory  # noqa: E402
from app.store.database import next_usn  # noqa: E402

GIVEN = [
    "Anna", "Ben", "Carla", "David", "Eva", "Felix", "Greta", "Hans", "Ines", "Jonas", "Karin",
    "Lukas", "Marie", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Stefan", "Tina", "Uwe", "Vera",
    "Walter", "Xenia", "Yusuf", "Zoe", "Jürgen", "Renée", "Zoë", "Björn", "Åsa", "François",
]  # fmt: skip
SURNAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Braun",
]  # fmt: skip
DEPARTMENTS = ["Sales", "Engineering", "Support", "Finance", "Marketing", "Legal"]
COMPANIES = ["Contoso", "Fabrikam", "Northwind", "Tailspin"]
POLICIES = [
    ("Sales", "(department=Sales)", "%g.%s@sales.example.com"),
    ("Fabrikam", "(company=Fabrikam)", "@fabrikam.example"),
    ("Support desk", "(&(department=Support)(objectClass=user))", "@support.example.com"),
]
WINDOW_SIZE = (1000, 640)


def build(data_dir: Path, count: int) -> None:
    """A fresh directory: the policies, and ``count`` recipients with a primary address each."""
    store = Store.open(data_dir)
    organization.initialize(store, "Benchmark", "example.com")
    for name, filter_text, rule in POLICIES:
        policies.create_policy(store, name, filter_text)
        policies.add_rule(store, name, rule)
    rng = random.Random(42)
    stamp = policies.now()
    kinds = ["user"] * 18 + ["contact", "group"]
    with store.write() as conn:
        for n in range(count):
            given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
            alias = f"u{n:06d}"
            kind = rng.choice(kinds)
            recipient = Recipient(
                alias=alias,
                kind=kind,  # type: ignore[arg-type]
                attributes={
                    "givenName": given,
                    "sn": surname,
                    "displayName": f"{given} {surname}",
                    "department": rng.choice(DEPARTMENTS),
                    "company": rng.choice(COMPANIES),
                },
                target="ext@partner.example" if kind == "contact" else None,
                created=stamp,
                modified=stamp,
            )
            rid = directory.insert_recipient(conn, recipient, next_usn(conn), None)
            directory.replace_addresses(
                conn, rid, [ProxyAddress(SMTP, f"{alias}@example.com", True)]
            )
    store.close()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- measuring a view ----------------------------------------------------------------------------


def settle(ms: int = 200) -> None:
    """Let a window just shown be exposed and painted (the event loop runs; nothing is timed)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(signal: Any, timeout_s: float = 600) -> None:
    """Run the event loop until ``signal`` fires (never a processEvents() loop)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(loop.quit)


def scroll(view: Any) -> dict[str, Any]:
    """Page down to the end, painting every page; then jump from the top to the end."""
    bar = view.verticalScrollBar()
    viewport = view.viewport()
    bar.setValue(0)
    viewport.repaint()
    frames: list[float] = []
    start = time.perf_counter()
    while bar.value() < bar.maximum():
        frame = time.perf_counter()
        bar.setValue(bar.value() + bar.pageStep())
        viewport.repaint()
        frames.append(time.perf_counter() - frame)
    total = time.perf_counter() - start
    last = view.model().index(view.model().rowCount() - 1, 1).data()
    bar.setValue(0)
    viewport.repaint()
    jump = time.perf_counter()
    bar.setValue(bar.maximum())
    viewport.repaint()
    jump_s = time.perf_counter() - jump
    frames.sort()
    return {
        "scroll_s": total,
        "pages": len(frames),
        "frame_median_ms": statistics.median(frames) * 1000 if frames else 0.0,
        "frame_p99_ms": frames[int(len(frames) * 0.99)] * 1000 if frames else 0.0,
        "frame_max_ms": frames[-1] * 1000 if frames else 0.0,
        "jump_ms": jump_s * 1000,
        "last_alias": last,
    }


def phase_lazy(data_dir: Path) -> dict[str, Any]:
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    from ui.app import close_window, open_window

    app = QApplication.instance() or QApplication(sys.argv[:1])
    store = Store.open(data_dir)
    settings = QSettings(str(data_dir / "bench-console.ini"), QSettings.Format.IniFormat)
    window = open_window(store, settings, services=False)
    window.resize(*WINDOW_SIZE)
    window.show()
    settle()
    before = peak_mb()
    view_node = window.node_of("recipients/all")
    factory: Callable[..., Any] = window.view_for
    view = factory(view_node)
    model = view.list_model
    start = time.perf_counter()
    window.select_node(view_node)
    if not model.has_loaded:
        wait_for(model.loaded)
    window.result_list.viewport().repaint()
    open_s = time.perf_counter() - start
    rows = window.proxy.rowCount()
    result = {"open_s": open_s, "rows": rows, **scroll(window.result_list)}

    start = time.perf_counter()
    window.result_list.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    wait_for(model.loaded)
    window.result_list.viewport().repaint()
    result["sort_alias_s"] = time.perf_counter() - start
    result["sorted_first"] = window.proxy.index(0, 1).data()
    start = time.perf_counter()
    model.set_filter_text("anna")
    wait_for(model.loaded)
    window.result_list.viewport().repaint()
    result["filter_s"] = time.perf_counter() - start
    result["filtered_rows"] = window.proxy.rowCount()
    result["fetched_rows"] = len(model._cache)
    result["peak_mb"] = peak_mb()
    result["peak_mb_before_open"] = before
    close_window(window)
    store.close()
    del app
    return result


def _load_rows(store: Store) -> list[tuple[int, str, str, str, str, str]]:
    """Every recipient as the list shows it, computed eagerly (the baselines' load)."""
    from app.policies.effective import PolicySet
    from app.store import policies as policy_rows
    from ui.formatting import shown_smtp
    from ui.models.recipients import KIND_TEXT

    everyone = recipients.list_recipients(store)
    with store.read() as conn:
        policy_set = PolicySet(policy_rows.load_policies(conn))
    rows = []
    for r in everyone:
        policy = policy_set.effective(r)
        rows.append(
            (
                int(r.id or 0),
                r.display_name,
                r.alias,
                KIND_TEXT[r.kind],
                shown_smtp(r.primary_address()),
                policy.name if policy else "",
            )
        )
    return rows


def _baseline_view(model: Any) -> tuple[Any, Any]:
    from PySide6.QtCore import QSortFilterProxyModel, Qt
    from PySide6.QtWidgets import QTreeView

    from ui.models.table import SORT_ROLE

    proxy = QSortFilterProxyModel()
    proxy.setSortRole(
        SORT_ROLE if not hasattr(model, "invisibleRootItem") else Qt.ItemDataRole.DisplayRole
    )
    proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    proxy.setSourceModel(model)
    view = QTreeView()
    view.setRootIsDecorated(False)
    view.setUniformRowHeights(True)
    view.setAllColumnsShowFocus(True)
    view.setModel(proxy)
    view.resize(WINDOW_SIZE[0] - 260, WINDOW_SIZE[1] - 120)
    view.show()
    settle()
    return view, proxy


def phase_eager(data_dir: Path) -> dict[str, Any]:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from ui import icons
    from ui.models.table import RowTableModel

    class EagerModel(RowTableModel[tuple[int, str, str, str, str, str]]):
        HEADERS = ("Display Name", "Alias", "Type", "Primary SMTP Address", "Policy")

        def key(self, row: tuple[int, str, str, str, str, str]) -> Hashable:
            return row[0]

        def display(self, row: tuple[int, str, str, str, str, str], column: int) -> str:
            return row[column + 1]

        def decoration(self, row: tuple[int, str, str, str, str, str], column: int) -> Any:
            return icons.icon("user")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    store = Store.open(data_dir)
    before = peak_mb()
    start = time.perf_counter()
    model = EagerModel()
    model.set_rows(_load_rows(store))
    loaded = time.perf_counter() - start
    view, proxy = _baseline_view(model)
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    view.viewport().repaint()
    open_s = time.perf_counter() - start
    result = {"open_s": open_s, "load_s": loaded, "rows": proxy.rowCount(), **scroll(view)}
    result["peak_mb"] = peak_mb()
    result["peak_mb_before_open"] = before
    store.close()
    del app
    return result


def phase_standard(data_dir: Path) -> dict[str, Any]:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QApplication

    from ui import icons

    app = QApplication.instance() or QApplication(sys.argv[:1])
    store = Store.open(data_dir)
    before = peak_mb()
    start = time.perf_counter()
    rows = _load_rows(store)
    loaded = time.perf_counter() - start
    model = QStandardItemModel(0, 5)
    model.setHorizontalHeaderLabels(
        ["Display Name", "Alias", "Type", "Primary SMTP Address", "Policy"]
    )
    user_icon = icons.icon("user")
    root = model.invisibleRootItem()
    for row in rows:
        items = [QStandardItem(text) for text in row[1:]]
        items[0].setIcon(user_icon)
        root.appendRow(items)
    view, proxy = _baseline_view(model)
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    view.viewport().repaint()
    open_s = time.perf_counter() - start
    result = {"open_s": open_s, "load_s": loaded, "rows": proxy.rowCount(), **scroll(view)}
    result["peak_mb"] = peak_mb()
    result["peak_mb_before_open"] = before
    store.close()
    del app
    return result


PHASES = {"lazy": phase_lazy, "eager": phase_eager, "standard": phase_standard}


def child(phase: str, data_dir: Path) -> dict[str, Any]:
    """Run one phase in a fresh interpreter, so its peak memory is its own."""
    output = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--data-dir", str(data_dir)],
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
        "--skip-eager", action="store_true", help="leave out the slow RowTableModel baseline"
    )
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        print(json.dumps(PHASES[args.phase](args.data_dir)), flush=True)
        return 0

    work = Path(tempfile.mkdtemp(prefix="postroom-console-bench-"))
    try:
        print(
            f"Console benchmark: All Recipients with {args.recipients:,} recipients, "
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
            f"QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}"
        )
        start = time.perf_counter()
        build(work / "data", args.recipients)
        print(f"built in {time.perf_counter() - start:.1f} s")
        results = {"lazy (All Recipients)": child("lazy", work / "data")}
        if not args.skip_eager:
            results["eager RowTableModel + proxy sort"] = child("eager", work / "data")
        results["QStandardItemModel fill"] = child("standard", work / "data")

        print()
        print(
            f"{'':34} {'open s':>8} {'scroll s':>9} {'pages':>6} {'page median/p99/max ms':>24}"
            f" {'jump ms':>8} {'peak MB':>8}"
        )
        for label, r in results.items():
            frames = (
                f"{r['frame_median_ms']:.1f} / {r['frame_p99_ms']:.1f} / {r['frame_max_ms']:.1f}"
            )
            print(
                f"{label:34} {r['open_s']:8.2f} {r['scroll_s']:9.2f} {r['pages']:6,} {frames:>24}"
                f" {r['jump_ms']:8.1f} {r['peak_mb']:8.0f}"
            )
        lazy = results["lazy (All Recipients)"]
        print()
        print(
            f"lazy: {lazy['rows']:,} rows; last row {lazy['last_alias']}; sort by Alias "
            f"(descending) {lazy['sort_alias_s']:.2f} s, first {lazy['sorted_first']}; filter "
            f"'anna' {lazy['filter_s']:.2f} s, {lazy['filtered_rows']:,} rows; "
            f"{lazy['fetched_rows']:,} rows fetched and kept at the end."
        )
        for label, r in results.items():
            if "load_s" in r:
                print(f"{label}: loading the rows took {r['load_s']:.2f} s of its open time.")
        ok = lazy["open_s"] <= 1.5 and lazy["frame_p99_ms"] <= 50 and lazy["last_alias"]
        print("targets met (open <= 1.5 s, p99 page <= 50 ms)" if ok else "TARGETS MISSED")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
