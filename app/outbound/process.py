"""The queue in a process of its own, beside the SMTP service's (as the disk writer is).

Sending competes with receiving for the CPU; in one interpreter they would take turns at its
GIL, in two they use two cores. The service starts ``python -m app.outbound.process`` with a
pipe on its stdin: when the service stops (or dies: the pipe closes with it), the queue stops.
The child takes the queue lock, waiting while another process holds it (a ``serve`` stopping
as the console starts, or the orphan of a killed service finishing its last step).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import app
from app.paths import DataPaths
from app.settings import format_host_port, parse_host_port

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(app.__file__).resolve().parent.parent
#: How often the child tries for the queue lock while another process holds it.
_LOCK_POLL = 0.2


class QueueProcess:
    """Starts and stops the queue's process for one data directory."""

    def __init__(
        self,
        paths: DataPaths,
        *,
        listeners: Iterable[tuple[str, int]] = (),
        print_events: bool = False,
    ) -> None:
        self.paths = paths
        self.listeners = list(listeners)
        self.print_events = print_events
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> bool:
        if self._process is not None:
            return True
        command = [sys.executable, "-m", "app.outbound.process", str(self.paths.root)]
        for host, port in self.listeners:
            command += ["--listen", format_host_port(host, port)]
        if self.print_events:
            command.append("--print-events")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=None if self.print_events else subprocess.DEVNULL,
            close_fds=True,
            cwd=str(_PROJECT_ROOT),
        )
        return True

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the queue to stop (its stdin closes) and wait; kill it if it will not."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the queue process did not stop within %g s; killing it", timeout)
            process.kill()
            process.wait()


def _print(event: object) -> None:
    from app.smtp.events import SmtpEvent

    if not isinstance(event, SmtpEvent):
        return
    to = ", ".join(event.recipients)
    via = f" via [{event.client}]" if event.client else ""
    sys.stdout.write(
        f"{event.kind} {event.queue_id} <{event.sender}> -> {to}{via}: {event.reason}\n"
    )
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """The child: run the queue of a data directory until stdin closes or SIGTERM."""
    from app.outbound.runner import QueueRunner
    from app.smtp.events import EventRecorder
    from app.store import Store

    parser = argparse.ArgumentParser(prog="python -m app.outbound.process")
    parser.add_argument("data_dir")
    parser.add_argument("--listen", action="append", default=[])
    parser.add_argument("--print-events", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service's Ctrl+C stops us through stdin

    def watch_stdin() -> None:
        with contextlib.suppress(OSError):
            while sys.stdin.buffer.read(4096):
                pass
        stop.set()

    threading.Thread(target=watch_stdin, name="postroom-queue-stdin", daemon=True).start()
    store = Store.open(Path(args.data_dir))
    recorder = EventRecorder(store)
    if args.print_events:
        recorder.add_callback(_print)
    listeners = [parse_host_port(text, any_port=True) for text in args.listen]
    runner = QueueRunner(store, listeners=listeners, recorder=recorder)
    recorder.start()
    try:
        while not runner.start():
            if stop.wait(_LOCK_POLL):
                return 0
        stop.wait()
        runner.stop()
    finally:
        recorder.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
