"""The RUS helper process: reads recipients, finds policies and makes names ahead of a big run.

A Rebuild spends most of its time in Python: finding each object's effective policy and
generating the local parts of its addresses. Neither needs the write lock, so for big runs a
helper process (``serve``, a child Python) does them for the coming batches from its own read
snapshot, on the second CPU, while the run's thread resolves collisions and writes. The run's
thread uses a prepared object only if its change number and the policies are still the same
inside the batch's transaction, and works out everything else itself: the helper changes the
speed of a run, never its results, and a helper that fails or lags is simply not used.

The helper is a plain child process talking pickle over its stdin/stdout (both ends are this
program), not ``multiprocessing``, which would re-import the main module of whatever started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.directory import addressing
from app.errors import PostroomError
from app.model import RecipientPolicy
from app.policies.effective import PolicySet, name_values
from app.store import policies as policy_rows
from app.store import rus as rows

log = logging.getLogger(__name__)

HELPER_MIN_OBJECTS = 20_000
"""Runs with fewer objects do everything on their own thread (a helper takes ~0.3 s to start)."""
AHEAD = 3
"""Batches the helper may prepare ahead of the run (bounds the memory they take)."""
_HEADER = struct.Struct("!Q")


Prepared = tuple[
    int, int | None, bool, tuple[tuple[str, str, bool], ...], int | None, dict[str, str]
]
"""One recipient as the helper read it: (usn, stamped usn, auto-update, addresses as (type,
address, primary), effective policy id, local parts by template). Plain tuples: the cheapest to
send."""


@dataclass(frozen=True)
class PreparedBatch:
    policies: tuple[RecipientPolicy, ...]
    objects: dict[int, Prepared]
    """By recipient id; only objects whose every local part could be made."""


def prepare_batch(database: Path, ids: Sequence[int]) -> PreparedBatch:
    """Read and work out these recipients (in the helper process)."""
    with rows.read_snapshot(database) as conn:
        loaded = tuple(policy_rows.load_policies(conn))
        recipients = rows.load_for_stamping(conn, ids)
    policies = PolicySet(loaded)
    objects: dict[int, Prepared] = {}
    for recipient in recipients:
        policy = policies.effective(recipient)
        local_parts: dict[str, str] = {}
        if policy is not None and recipient.auto_update:
            values = name_values(recipient)
            try:
                for rule in policies.rules(policy):
                    template = rule.template.local_template
                    if template not in local_parts:
                        local_parts[template] = addressing.generate_local_part(
                            rule.template, values
                        )
            except PostroomError:
                continue  # the run's thread meets the error again and records it
        objects[int(recipient.id or 0)] = (
            recipient.usn,
            recipient.stamped_usn,
            recipient.auto_update,
            tuple((a.type, a.address, a.primary) for a in recipient.addresses),
            policy.id if policy else None,
            local_parts,
        )
    return PreparedBatch(loaded, objects)


def helper_possible() -> bool:
    """Whether a helper process may be used: two CPUs, and not a frozen bundle (whose
    executable is the console, not a Python that can run the helper)."""
    return (os.cpu_count() or 1) >= 2 and not getattr(sys, "frozen", False)


def _write_frame(stream: IO[bytes], data: Any) -> None:
    payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)


class Preparer:
    """Feeds the batches of a run to a helper process, a few ahead of the run.

    ``take(index)`` is called on the run's thread; a thread of its own talks to the helper.
    """

    def __init__(self, database: Path, batches: Sequence[Sequence[int]]) -> None:
        self._database = database
        self._batches = [list(batch) for batch in batches]
        self._results: dict[int, PreparedBatch] = {}
        self._wanted = 0  # the next index the run will take
        self._closed = False
        self._cond = threading.Condition()
        root = Path(__file__).resolve().parent.parent.parent
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from app.rus.helper import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a helper that fails is only not used (and logged)
            env=env,
        )
        self._thread = threading.Thread(target=self._pump, name="rus-preparer", daemon=True)
        self._thread.start()

    def take(self, index: int) -> PreparedBatch | None:
        """Batch ``index``'s preparation if it is ready; None: work it out on this thread."""
        with self._cond:
            self._wanted = index + 1
            self._cond.notify_all()
            return self._results.pop(index, None)

    def _pump(self) -> None:
        """The helper's conversation, one batch at a time, skipping batches the run passed."""
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        try:
            for index, batch in enumerate(self._batches):
                with self._cond:
                    while not self._closed and index >= self._wanted + AHEAD:
                        self._cond.wait()
                    if self._closed:
                        return
                    if index < self._wanted:
                        continue  # the run did this one itself
                _write_frame(process.stdin, (self._database, batch))
                result = _read_frame(process.stdout)
                if isinstance(result, BaseException):
                    raise result
                with self._cond:
                    if index >= self._wanted:
                        self._results[index] = result
        except Exception as error:
            if not self._closed:
                log.warning(
                    "the RUS helper process stopped helping (exit status %s): %s",
                    process.poll(),
                    repr(error),
                )

    def close(self) -> None:
        """End the helper (the run is over or given up)."""
        with self._cond:
            self._closed = True
            self._results.clear()
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._thread.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()


def serve() -> None:
    """The helper process: prepare each batch asked for until the run closes the pipe."""
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            database, ids = _read_frame(requests)
        except EOFError:
            return
        try:
            reply: Any = prepare_batch(database, ids)
        except Exception as error:
            reply = PostroomError(f"{type(error).__name__}: {error}")
        _write_frame(replies, reply)
