"""SMTP throughput: ``postroom serve`` beside a do-nothing aiosmtpd and Postfix's smtp-sink.

Postfix's ``smtp-source`` sends the same load (default: 10 sessions, 5,000 one-kilobyte messages
to one mailbox) to three servers on loopback, in the same run:

- ``postroom serve``: every message fsync'ed into the Maildir before its 250 (durable);
- aiosmtpd with a handler that does nothing (the framework's ceiling);
- ``smtp-sink`` (the machine's ceiling).

Each server is started fresh for each measurement, is ready (postroom has printed ``listening
on``, the others greet) and has taken a warm-up load before the timed one; the time is
smtp-source's wall time. The three take turns, round after round (``--runs``), and the targets
are judged on the medians. Every postroom run has a data directory of its own, kept until the
end: no file is deleted between the runs.

After each postroom run the benchmark also says what creating a file costs in the folder
postroom created its files in (the Maildir's ``tmp/``; 500 files written and closed, no fsync).
Normally tens of microseconds; but ext4 without a journal (as on some virtual machines) scans
the block group's inodes freed in the last minutes at each create, so after many deletions
nearby (an earlier run of this benchmark, a test suite) it can take ten times as long, and the
durable figure drops with it.

Needs ``smtp-source`` and ``smtp-sink`` from the Debian package ``postfix`` (it starts no daemon
here); run as root, the script installs it when missing, else install it with
``sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix``.

Usage: ``.venv/bin/python benchmarks/smtp.py [--messages N] [--sessions N] [--size BYTES]
[--runs N] [--warmup N] [--reuse] [--work-dir DIR]`` (``--reuse`` sends every message of a
session over one connection: smtp-source -d; ``--work-dir`` holds postroom's data directories,
by default the system's temporary folder).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("smtp-source", "smtp-sink")
DURABLE_TARGET = 1000.0
RATIO_TARGET = 0.5
PROBE_FILES = 500
# Above this, creating files is held back by recent deletions (see the module's docstring).
SLOW_CREATE_US = 200.0

DO_NOTHING = """
import signal, sys
from aiosmtpd.controller import Controller

class Nothing:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

controller = Controller(Nothing(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
signal.sigwait([signal.SIGINT, signal.SIGTERM])
controller.stop()
"""


def tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None
    )


def ensure_tools() -> dict[str, str]:
    missing = [name for name in TOOLS if tool(name) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing postfix for smtp-source and smtp-sink ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postfix"],
            check=True,
            env=env,
        )
    found = {name: tool(name) for name in TOOLS}
    lacking = [name for name, path in found.items() if path is None]
    if lacking:
        sys.exit(
            f"{', '.join(lacking)} not found. Install Postfix's tools with: "
            "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
        )
    return {name: str(path) for name, path in found.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.recv(512)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def run_source(source: str, port: int, args: argparse.Namespace, messages: int) -> float:
    """Run smtp-source with the options every server gets; the messages per second it took."""
    command = [source, "-s", str(args.sessions), "-m", str(messages), "-l", str(args.size)]
    if args.reuse:
        command.append("-d")
    command += ["-f", "bench@sender.test", "-t", "bench@example.com", f"127.0.0.1:{port}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return messages / (time.perf_counter() - start)


def measure(source: str, port: int, args: argparse.Namespace) -> float:
    """A warm-up load, then the timed one."""
    if args.warmup:
        run_source(source, port, args, args.warmup)
    return run_source(source, port, args, args.messages)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def probe_file_system(folder: Path) -> float:
    """Microseconds to create, write and close a 1 KB file in ``folder`` (files are kept)."""
    data = b"x" * 1024
    start = time.perf_counter()
    for n in range(PROBE_FILES):
        fd = os.open(folder / f"probe-{n}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)
    return (time.perf_counter() - start) / PROBE_FILES * 1e6


def bench_postroom(source: str, args: argparse.Namespace, data: Path) -> tuple[float, float]:
    """Messages per second, and then microseconds to create a file in the Maildir's tmp/."""
    python = sys.executable
    env = {**os.environ, "POSTROOM_DATA_DIR": str(data)}
    setup = (
        "from pathlib import Path\n"
        "from app import organization, settings\n"
        "from app.directory import recipients\n"
        "from app.store import Store\n"
        f"store = Store.open(Path({str(data)!r}))\n"
        "organization.initialize(store, 'Benchmark', 'example.com')\n"
        "recipients.create_recipient(store, 'bench')\n"
        "recipients.add_address(store, 'bench', 'bench@example.com')\n"
        "settings.save_settings(store, fqdn='mx.example.test')\n"
        "store.close()\n"
    )
    subprocess.run([python, "-c", setup], check=True, cwd=ROOT, env=env)
    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "app", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
    )
    drain: subprocess.Popen[bytes] | None = None
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        if not line.startswith("listening on"):
            raise SystemExit(f"postroom serve did not start: {line!r}")
        # Drain the per-message log lines so the server never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=server.stdout, stdout=subprocess.DEVNULL)
        rate = measure(source, port, args)
    finally:
        stop(server)
        if drain is not None:
            drain.wait()
    maildir = data / "mailboxes" / "bench"
    delivered = len(os.listdir(maildir / "new"))
    if delivered != args.warmup + args.messages:
        raise SystemExit(f"postroom stored {delivered} of {args.warmup + args.messages} messages")
    return rate, probe_file_system(maildir / "tmp")


def bench_aiosmtpd(source: str, args: argparse.Namespace) -> float:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", DO_NOTHING, str(port)], cwd=ROOT)
    try:
        wait_for_port(port)
        return measure(source, port, args)
    finally:
        stop(server)


def bench_sink(sink: str, source: str, args: argparse.Namespace) -> float:
    port = free_port()
    # smtp-sink refuses to run as root without a user to switch to.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    server = subprocess.Popen([sink, *user, f"127.0.0.1:{port}", "256"])
    try:
        wait_for_port(port)
        return measure(source, port, args)
    finally:
        stop(server)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024, help="message length in bytes")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each server")
    parser.add_argument(
        "--warmup", type=int, default=200, help="messages sent before each timed load"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="all of a session's messages on one connection"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="where postroom's data directories go (default: $TMPDIR)"
    )
    args = parser.parse_args()
    tools = ensure_tools()
    mode = "one connection per session" if args.reuse else "one connection per message"
    print(
        f"smtp-source: {args.sessions} sessions, {args.messages} messages of {args.size} bytes, "
        f"{mode}, to one mailbox; {args.warmup} more first to warm up; {args.runs} runs each",
        flush=True,
    )
    print(f"machine: {os.cpu_count()} cores, {load()}", flush=True)
    figures: dict[str, list[float]] = {"postroom": [], "aiosmtpd": [], "sink": []}
    creates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="postroom-bench-", dir=args.work_dir) as work:
        print(f"postroom's data directories: {work}", flush=True)
        for n in range(1, args.runs + 1):
            rate, create = bench_postroom(tools["smtp-source"], args, Path(work) / f"data{n}")
            figures["postroom"].append(rate)
            creates.append(create)
            figures["aiosmtpd"].append(bench_aiosmtpd(tools["smtp-source"], args))
            figures["sink"].append(bench_sink(tools["smtp-sink"], tools["smtp-source"], args))
            print(
                f"run {n}: postroom {rate:.0f} (a file created in its Maildir: {create:.0f} us), "
                f"aiosmtpd {figures['aiosmtpd'][-1]:.0f}, smtp-sink {figures['sink'][-1]:.0f} "
                "msgs/s",
                flush=True,
            )
    postroom, aiosmtpd, sink = (statistics.median(figures[name]) for name in figures)
    ratio = postroom / aiosmtpd
    print(f"medians of {args.runs} runs; {load()}")
    if statistics.median(creates) > SLOW_CREATE_US:
        print(
            "file creation was slow: many files were deleted near the Maildir in the last minutes "
            "(an earlier run?), and postroom creates a file per message; run again later"
        )
    print(f"postroom serve (durable):    {postroom:8.0f} msgs/s")
    print(f"aiosmtpd, do-nothing:        {aiosmtpd:8.0f} msgs/s")
    print(f"smtp-sink:                   {sink:8.0f} msgs/s")
    print(
        f"postroom / aiosmtpd: {ratio:.0%} (target {RATIO_TARGET:.0%}); "
        f"durable target {DURABLE_TARGET:.0f} msgs/s: "
        f"{'met' if postroom >= DURABLE_TARGET and ratio >= RATIO_TARGET else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
