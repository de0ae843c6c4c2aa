"""SMTP throughput: ``postroom serve`` beside a do-nothing aiosmtpd and Postfix's smtp-sink.

Postfix's ``smtp-source`` sends the same load (default: 10 sessions, 5,000 one-kilobyte messages
to one mailbox) to three servers on loopback, one after the other, in the same run:

- ``postroom serve``: every message fsync'ed into the Maildir before its 250 (durable);
- aiosmtpd with a handler that does nothing (the framework's ceiling);
- ``smtp-sink`` (the machine's ceiling).

Needs ``smtp-source`` and ``smtp-sink`` from the Debian package ``postfix`` (it starts no daemon
here); run as root, the script installs it when missing, else install it with
``sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix``.

Usage: ``.venv/bin/python benchmarks/smtp.py [--messages N] [--sessions N] [--size BYTES]
[--reuse]`` (``--reuse`` sends every message of a session over one connection: smtp-source -d).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("smtp-source", "smtp-sink")
DURABLE_TARGET = 1000.0
RATIO_TARGET = 0.5

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


def run_source(source: str, port: int, args: argparse.Namespace, rcpt: str) -> float:
    """Run smtp-source; the messages per second it achieved."""
    command = [source, "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.size)]
    if args.reuse:
        command.append("-d")
    command += ["-f", "bench@sender.test", "-t", rcpt, f"127.0.0.1:{port}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return args.messages / (time.perf_counter() - start)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bench_postroom(source: str, args: argparse.Namespace, work: Path) -> float:
    python = sys.executable
    data = work / "postroom"
    env = {**os.environ, "POSTROOM_DATA_DIR": str(data)}
    setup = (
        "from pathlib import Path\n"
        "from app import organization, recipients, settings\n"
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
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        if not line.startswith("listening on"):
            raise SystemExit(f"postroom serve did not start: {line!r}")
        # Drain the per-message log lines so the server never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=server.stdout, stdout=subprocess.DEVNULL)
        rate = run_source(source, port, args, "bench@example.com")
    finally:
        stop(server)
        drain.wait()
    delivered = len(os.listdir(data / "mailboxes" / "bench" / "new"))
    if delivered != args.messages:
        raise SystemExit(f"postroom stored {delivered} of {args.messages} messages")
    return rate


def bench_aiosmtpd(source: str, args: argparse.Namespace) -> float:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", DO_NOTHING, str(port)], cwd=ROOT)
    try:
        wait_for_port(port)
        return run_source(source, port, args, "bench@example.com")
    finally:
        stop(server)


def bench_sink(sink: str, source: str, args: argparse.Namespace) -> float:
    port = free_port()
    # smtp-sink refuses to run as root without a user to switch to.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    server = subprocess.Popen([sink, *user, f"127.0.0.1:{port}", "256"])
    try:
        wait_for_port(port)
        return run_source(source, port, args, "bench@example.com")
    finally:
        stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024, help="message length in bytes")
    parser.add_argument(
        "--reuse", action="store_true", help="all of a session's messages on one connection"
    )
    args = parser.parse_args()
    tools = ensure_tools()
    mode = "one connection per session" if args.reuse else "one connection per message"
    print(
        f"smtp-source: {args.sessions} sessions, {args.messages} messages of {args.size} bytes, "
        f"{mode}, to one mailbox",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as work:
        postroom = bench_postroom(tools["smtp-source"], args, Path(work))
    aiosmtpd = bench_aiosmtpd(tools["smtp-source"], args)
    sink = bench_sink(tools["smtp-sink"], tools["smtp-source"], args)
    ratio = postroom / aiosmtpd
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
