"""Outbound relay throughput: ``postroom serve`` beside a private Postfix, both relaying the same
load to the same ``smtp-sink`` on loopback, in the same run.

The load (default: 5,000 messages of one kilobyte, each to one recipient, spread over 50
domains) is sent by this script over ``--concurrency`` SMTP connections at once, each sending
its share of the messages one after another on one connection. Each relay is started fresh:

- Postfix: a private instance (tests/postfix_instance.py: its own configuration, queue and data
  directory, Debian's binaries, Postfix's default concurrency of 20 to one destination) with
  ``relayhost = [127.0.0.1]:<sink>``;
- Postroom: a new data directory, ``relay_ips 127.0.0.1``, one SMTP connector for address space
  ``*`` with the sink as its smart host, and ``postroom serve``.

The time runs from the first message a relay accepts (the first 250 after DATA the client gets)
to the last message reaching the sink (smtp-sink -c's count, read as it goes up). CPU is user
plus system time of the relay's whole process tree (Postfix's master and every daemon it ran;
``postroom serve`` and its children), from /proc/<pid>/stat, counting ended children reaped by
their parent: taken just before the load and again one second after the last message reached
the sink (idle time the relay spends in that second counts). The sink's and the client's CPU
are counted for neither.

The two relays take turns, run after run (``--runs``), each run starting both afresh, and the
target (Postroom's messages per second at least Postfix's) is judged on the medians. First, the
client sends the load straight to the sink once, to show it is not what limits the relays.

Needs Postfix's programs (the Debian package ``postfix``, which ./run tests installs) and root,
as Postfix's master runs as root.

Usage: ``.venv/bin/python benchmarks/outbound.py [--messages N] [--domains N]
[--concurrency N] [--size BYTES] [--runs N] [--postfix-concurrency N] [--timeout S]
[--work-dir DIR]`` (``--work-dir`` must be a folder the postfix user may pass through).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postfix_instance import (  # noqa: E402
    HarnessError,
    PostfixInstance,
    SmtpSink,
    tree_cpu_seconds,
)

SENDER = "bench@sender.test"
SETTLE = 1.0  # seconds after the last message before the second CPU reading


@dataclass
class Result:
    name: str
    delivered: int
    seconds: float  # first accept -> last message at the sink (or the time-out)
    accept_seconds: float  # first accept -> last accept
    cpu: float | None  # None: not measured (the client straight to the sink)

    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


def build_load(messages: int, domains: int, size: int) -> list[tuple[str, bytes]]:
    """(recipient, message) pairs: user<n>@domain<n % domains>.test, ``size`` bytes each."""
    load = []
    for n in range(messages):
        recipient = f"user{n}@domain{n % domains}.test"
        head = (
            f"From: Benchmark <{SENDER}>\r\nTo: <{recipient}>\r\nSubject: outbound {n}\r\n"
            f"Message-ID: <outbound-{n}@sender.test>\r\nDate: Sat, 05 Dec 2026 12:00:00 +0000\r\n"
            "\r\n"
        ).encode()
        # Lines of 70 x's and CRLF, the last one shorter, to make up the size (at least a line).
        room = max(size - len(head), 2)
        full, rest = divmod(room, 72)
        body = (b"x" * 70 + b"\r\n") * full + (b"x" * (rest - 2) + b"\r\n" if rest >= 2 else b"")
        load.append((recipient, head + (body or b"\r\n")))
    return load


async def _reply(reader: asyncio.StreamReader) -> bytes:
    """One SMTP reply (every line of a multi-line one); its last line."""
    while True:
        text = await reader.readline()
        if len(text) < 4 or text[3:4] != b"-":
            return text


async def _session(port: int, share: list[tuple[str, bytes]], accepts: list[float]) -> None:
    """One connection sending its share one message after another, each command answered
    before the next (Postroom does not offer PIPELINING, so neither relay gets it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        expect(await _reply(reader), b"220")
        writer.write(b"EHLO client.sender.test\r\n")
        expect(await _reply(reader), b"250")
        for recipient, message in share:
            for command, code in (
                (f"MAIL FROM:<{SENDER}>", b"250"),
                (f"RCPT TO:<{recipient}>", b"250"),
                ("DATA", b"354"),
            ):
                writer.write(command.encode() + b"\r\n")
                expect(await _reply(reader), code)
            writer.write(message + b".\r\n")
            expect(await _reply(reader), b"250")
            accepts.append(time.monotonic())
        writer.write(b"QUIT\r\n")
        await _reply(reader)
    finally:
        writer.close()
        await writer.wait_closed()


def expect(reply: bytes, code: bytes) -> None:
    if not reply.startswith(code):
        raise SystemExit(f"the relay answered {reply!r} where {code.decode()} was due")


def send_load(port: int, load: list[tuple[str, bytes]], concurrency: int) -> tuple[float, float]:
    """Send every message to 127.0.0.1:``port`` over ``concurrency`` connections at once; the
    times of the first accept and of the last one."""
    accepts: list[float] = []

    async def everything() -> None:
        shares = [load[n::concurrency] for n in range(concurrency)]
        await asyncio.gather(*(_session(port, share, accepts) for share in shares))

    asyncio.run(everything())
    return min(accepts), max(accepts)


def measure(
    name: str,
    port: int,
    sink: SmtpSink,
    load: list[tuple[str, bytes]],
    args: argparse.Namespace,
    cpu: Callable[[], float] | None,
) -> Result:
    """Send the load through the relay on ``port`` and wait for the sink to have it all."""
    base = sink.received
    cpu_before = cpu() if cpu else 0.0
    first, last_accept = send_load(port, load, args.concurrency)
    done = sink.wait_for(base + len(load), timeout=args.timeout)
    delivered = sink.received - base
    last = sink.last_at if done and sink.last_at is not None else time.monotonic()
    if cpu is None:
        return Result(name, delivered, last - first, last_accept - first, None)
    time.sleep(SETTLE)
    return Result(name, delivered, last - first, last_accept - first, cpu() - cpu_before)


def bench_postfix(
    sink: SmtpSink, load: list[tuple[str, bytes]], args: argparse.Namespace
) -> Result:
    with PostfixInstance(
        "127.0.0.1",
        sink.port,
        parent=args.work_dir,
        destination_concurrency=args.postfix_concurrency,
    ) as postfix:
        result = measure("Postfix", postfix.port, sink, load, args, postfix.cpu_seconds)
        if result.delivered < len(load):
            tail = "\n".join(postfix.log().splitlines()[-5:])
            print(f"Postfix's log ends:\n{tail}", flush=True)
    return result


def postroom(data: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"postroom {' '.join(args)} failed: {done.stderr.strip()}")


def bench_postroom(
    sink: SmtpSink, load: list[tuple[str, bytes]], args: argparse.Namespace, data: Path
) -> Result:
    postroom(data, "smtp", "set", "fqdn", "postroom.loopback.test")
    postroom(data, "smtp", "set", "relay_ips", "127.0.0.1")
    postroom(
        data,
        "connector",
        "new",
        "Sink",
        "--address-space",
        "*",
        "--smart-host",
        f"[127.0.0.1]:{sink.port}",
    )
    errors = data / "serve.err"
    with errors.open("w") as stderr:
        serve = subprocess.Popen(
            [sys.executable, "-m", "app", "--data-dir", str(data), "serve"]
            + ["--listen", "127.0.0.1:0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    drain: subprocess.Popen[bytes] | None = None
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline().decode()
        if not line.startswith("listening on 127.0.0.1:"):
            raise SystemExit(f"postroom serve did not start: {line!r} {errors.read_text()}")
        port = int(line.strip().rsplit(":", 1)[1])
        # Drain the per-message lines so serve never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=serve.stdout, stdout=subprocess.DEVNULL)
        return measure("Postroom", port, sink, load, args, lambda: tree_cpu_seconds(serve.pid))
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        if drain is not None:
            drain.wait()
        if serve.stdout is not None:
            serve.stdout.close()
        complaints = errors.read_text().strip()
        if complaints:
            print(f"postroom serve's stderr ends:\n{complaints[-1500:]}", flush=True)


def line(result: Result, messages: int) -> str:
    text = (
        f"{result.name + ':':<16}{result.delivered:>6} of {messages} in {result.seconds:6.2f} s "
        f"(all accepted in {result.accept_seconds:5.2f} s) {result.rate():6.0f} msgs/s"
    )
    if result.cpu is not None and result.delivered:
        text += f", CPU {result.cpu:5.2f} s = {result.cpu / result.delivered * 1000:.3f} ms/msg"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10, help="client connections at once")
    parser.add_argument("--size", type=int, default=1024, help="message length in bytes")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each relay")
    parser.add_argument(
        "--postfix-concurrency",
        type=int,
        default=20,
        help="Postfix's connections to the sink at once (its default_destination_concurrency)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the sink to have all"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="where the Postfix instances and Postroom's data go (default: $TMPDIR)",
    )
    args = parser.parse_args()
    for name in ("messages", "domains", "runs", "postfix_concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 1 <= args.concurrency <= args.messages:
        parser.error("--concurrency must be between 1 and --messages")
    if os.geteuid() != 0:
        raise SystemExit("run as root: the private Postfix's master must start as root")

    load = build_load(args.messages, args.domains, args.size)
    one, five, _ = os.getloadavg()
    print(
        f"{args.messages} messages of {len(load[0][1])} bytes to {args.domains} domains over "
        f"{args.concurrency} connections, relayed to smtp-sink on loopback, {args.runs} runs; "
        f"{os.cpu_count()} cores, load {one:.2f} {five:.2f}",
        flush=True,
    )
    results: dict[str, list[Result]] = {"Postfix": [], "Postroom": []}
    with (
        tempfile.TemporaryDirectory(prefix="outbound-bench-", dir=args.work_dir) as work,
        SmtpSink() as sink,
    ):
        # What the client can send at all: straight to the sink, nothing relayed.
        print(line(measure("client -> sink", sink.port, sink, load, args, None), args.messages))
        for n in range(1, args.runs + 1):
            try:
                results["Postfix"].append(bench_postfix(sink, load, args))
            except HarnessError as error:
                raise SystemExit(f"the private Postfix failed: {error}") from error
            print(line(results["Postfix"][-1], args.messages), flush=True)
            data = Path(work) / f"postroom-{n}"
            results["Postroom"].append(bench_postroom(sink, load, args, data))
            print(line(results["Postroom"][-1], args.messages), flush=True)
            for name, verdict in (("Postfix", "no baseline"), ("Postroom", "target NOT met")):
                result = results[name][-1]
                if result.delivered < args.messages:
                    print(
                        f"{name} delivered {result.delivered} of {args.messages} in "
                        f"{result.seconds:.1f} s: {verdict}",
                        flush=True,
                    )
                    return 1

    def median(name: str, figure: Callable[[Result], float]) -> float:
        return statistics.median(figure(r) for r in results[name])

    rates = {name: median(name, Result.rate) for name in results}
    cpus = {name: median(name, lambda r: (r.cpu or 0.0) / r.delivered * 1000) for name in results}
    print(f"medians of {args.runs} runs; load {os.getloadavg()[0]:.2f}")
    for name in results:
        print(f"{name + ':':<10}{rates[name]:8.0f} msgs/s {cpus[name]:8.3f} ms CPU/msg")
    ratio = rates["Postroom"] / rates["Postfix"]
    print(
        f"Postroom / Postfix: {ratio:.2f} in messages per second, target >= 1.00: "
        f"{'met' if ratio >= 1 else 'NOT met'}; CPU per message "
        f"{cpus['Postroom'] / cpus['Postfix']:.2f} times Postfix's"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
