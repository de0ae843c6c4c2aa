"""An administrator's queue action, carried out by whoever owns the queue.

The running queue (``postroom serve`` or the console's service) owns it and takes requests
from ``<data>/queue/control/``; when none runs, the command applies the request itself while
holding the queue lock, so that a queue starting meanwhile waits for it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from app.errors import PostroomError
from app.outbound import notices
from app.outbound.hops import Unroutable, hop_of
from app.outbound.queue import (
    Change,
    HopNamer,
    HopState,
    HopView,
    Item,
    Request,
    apply,
    hop_views,
    load_items,
)
from app.queue import state
from app.settings import Settings
from app.smtp.routing import DirectoryIndex
from app.store import Store

log = logging.getLogger(__name__)

#: How long a command waits for the running queue to take its request.
WAIT_SECONDS = 15.0

UNROUTABLE = "Unreachable"


def namer(index: DirectoryIndex) -> HopNamer:
    """Names a recipient's queue (memoised by domain where the directory does not decide)."""

    def name(address: str) -> str:
        hop = hop_of(address, index, index.connectors, index.settings)
        return UNROUTABLE if isinstance(hop, Unroutable) else hop.name

    return name


def control_folder(queue_root: Path) -> Path:
    return queue_root / "control"


def execute(
    queue_root: Path, request: Request, items: list[Item], name: HopNamer, settings: Settings
) -> Change:
    """Apply ``request`` to ``items`` and store the result: states, frozen queues, NDRs.
    The caller owns the queue (raises PostroomError for a request that names nothing)."""
    frozen = state.frozen_hops(queue_root)
    change = apply(request, items, name, frozen)
    if change.frozen_hops is not None:
        state.write_frozen_hops(queue_root, set(change.frozen_hops))
    touched = set(change.messages)
    plans = [notices.plan(item) for item in items if item.name in touched]
    notices.store(queue_root, plans, settings)
    return change


def submit(store: Store, request: Request) -> str:
    """Carry out ``request`` and say what was done, in one line (raises PostroomError)."""
    request.check()
    root = store.paths.queue
    lock = state.QueueLock(root)
    with lock.held() as mine:
        if mine:
            index = DirectoryIndex.load(store)
            change = execute(root, request, load_items(root), namer(index), index.settings)
            return describe(request, change)
    return _hand_over(root, request)


def describe(request: Request, change: Change) -> str:
    count = len(change.messages)
    what = f"{count} message{'s' if count != 1 else ''}"
    if request.hop and change.frozen_hops is not None:
        verb = "frozen" if request.hop in change.frozen_hops else "unfrozen"
        return f"Queue '{request.hop}' {verb} ({what})."
    if request.action.value == "delete":
        ndr = "with" if request.ndr else "without"
        return f"Deleted {len(change.deleted)} recipient(s) of {what} {ndr} an NDR."
    done = {"retry": "to be retried now", "freeze": "frozen", "unfreeze": "unfrozen"}
    return f"{what.capitalize()} {done[request.action.value]}."


def _hand_over(root: Path, request: Request) -> str:
    folder = control_folder(root)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{os.getpid()}"
    state.write_json(folder / f"{name}.request", request.as_json())
    answer = folder / f"{name}.answer"
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            raw = json.loads(answer.read_bytes())
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
            continue
        answer.unlink(missing_ok=True)
        if not raw.get("ok"):
            raise PostroomError(str(raw.get("text", "The running queue refused the request.")))
        return str(raw.get("text", ""))
    raise PostroomError(
        f"The running queue did not take the request within {WAIT_SECONDS:g} s; it stays in "
        f"{folder} and is carried out when the queue next looks."
    )


def take_requests(queue_root: Path) -> list[tuple[Path, Request | PostroomError]]:
    """The requests waiting in ``control/``, oldest first (for the running queue)."""
    folder = control_folder(queue_root)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".request"))
    except FileNotFoundError:
        return []
    found: list[tuple[Path, Request | PostroomError]] = []
    for name in names:
        path = folder / name
        try:
            found.append((path, Request.from_json(json.loads(path.read_bytes()))))
        except (OSError, ValueError, KeyError) as error:
            found.append((path, PostroomError(f"The request {name} is damaged: {error}")))
    return found


def answer(path: Path, ok: bool, text: str) -> None:
    """Answer a request taken from ``control/`` and remove it."""
    state.write_json(path.with_suffix(".answer"), {"ok": ok, "text": text})
    path.unlink(missing_ok=True)


# -- what the administrator reads -----------------------------------------------------------


def running_report(queue_root: Path) -> dict[str, int]:
    """Connections open per queue, as the running queue last reported (empty if none runs)."""
    with state.QueueLock(queue_root).held() as mine:
        if mine:
            return {}  # nobody owns the queue: its report is stale
    try:
        raw = json.loads((queue_root / "status.json").read_bytes())
    except (OSError, ValueError):
        return {}
    active = raw.get("active", {}) if isinstance(raw, dict) else {}
    return {str(name): int(count) for name, count in active.items()}


def snapshot(store: Store) -> list[HopView]:
    """Every queue with its messages, as ``postroom queue list`` and the console show them;
    a frozen queue is listed while empty too, so that it can be unfrozen before mail for it
    arrives and waits. Reads the directory and the queue's files: a worker thread in the
    console."""
    root = store.paths.queue
    index = DirectoryIndex.load(store)
    frozen = state.frozen_hops(root)
    views = hop_views(
        load_items(root),
        namer(index),
        frozen_hops=frozen,
        active=running_report(root),
        expiration=index.settings.expiration_timeout,
    )
    named = {view.name for view in views}
    views += [HopView(hop, HopState.FROZEN, (), "", 0.0) for hop in frozen - named]
    return sorted(views, key=lambda view: view.name.casefold())


def queued_for_connector(store: Store, name: str) -> int:
    """How many messages wait for a next hop the connector ``name`` carries."""
    index = DirectoryIndex.load(store)
    wanted = name.casefold()
    count = 0
    for item in load_items(store.paths.queue):
        for address in item.pending:
            hop = hop_of(address, index, index.connectors, index.settings)
            if isinstance(hop, Unroutable) or hop.route is None:
                continue
            if any(c.connector.name.casefold() == wanted for c in hop.route.connectors):
                count += 1
                break
    return count
