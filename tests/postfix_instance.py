"""A private Postfix on loopback and Postfix's smtp-sink, for tests and benchmarks that measure or
exercise Postroom beside a real MTA. (No tests here; they are in test_postfix_instance.py.)

The Postfix is the Debian package's binaries with a configuration, queue and data directory of
its own under a folder the caller gives: it listens on one free loopback port, relays everything
to one host:port, and is started with ``postfix -c DIR start`` and stopped through its own
master's PID. It never reads or touches the system's /etc/postfix/main.cf, queue or service.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"
INSTALL_HINT = (
    "install Postfix's programs with ./run tests (it installs the Debian package postfix), or "
    "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The queue folders a message can wait in (pickup's maildrop, cleanup's incoming, qmgr's active,
# and deferred); hold is left out, nothing here puts mail on hold.
QUEUE_FOLDERS = ("maildrop", "incoming", "active", "deferred")


class HarnessError(RuntimeError):
    """The private Postfix or the sink could not be started, or did not stop."""


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_greeting(port: int, timeout: float = 30.0) -> str:
    """Wait until an SMTP server on 127.0.0.1:``port`` greets; its greeting line."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                greeting = sock.recv(512).decode("ascii", "replace")
                if greeting.startswith("220"):
                    return greeting.strip()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise HarnessError(f"nothing greets on 127.0.0.1:{port} after {timeout:.0f} s")
        time.sleep(0.05)


def require(program: str) -> str:
    if not os.access(program, os.X_OK):
        raise HarnessError(f"{program} is missing: {INSTALL_HINT}")
    return program


# --- CPU time of a process tree -----------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """A live process's parent PID and its CPU seconds, its own plus its reaped children's."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / CLK_TCK


def process_tree(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and of each live descendant (each counting its reaped children)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            stats[int(entry)] = stat
    tree: dict[int, float] = {}
    if root in stats:
        tree[root] = stats[root][1]
    added = True
    while added:
        added = False
        for pid, (ppid, seconds) in stats.items():
            if ppid in tree and pid not in tree:
                tree[pid] = seconds
                added = True
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU seconds used so far by process ``root`` and all its descendants,
    those still running and those that ended (the kernel adds an ended child's time to its
    parent once reaped; a child that ended unreaped is not counted until then)."""
    return sum(process_tree(root).values())


# --- the sink -----------------------------------------------------------------------------------


class SmtpSink:
    """``smtp-sink`` on a free loopback port: takes every message, counts them, and can keep
    each one in ``dump_dir`` (one file per message, smtp-sink's X- headers first)."""

    def __init__(self, dump_dir: Path | None = None, backlog: int = 256) -> None:
        self.port = free_port()
        self.dump_dir = dump_dir
        self.backlog = backlog
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._count = 0
        self._first_at: float | None = None
        self._last_at: float | None = None

    def start(self) -> SmtpSink:
        command = [require(SMTP_SINK), "-c"]
        cwd = None
        if os.geteuid() == 0:
            # smtp-sink refuses to run as root: it drops to nobody once it has its socket.
            command += ["-u", "nobody"]
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                nobody = pwd.getpwnam("nobody")
                os.chown(self.dump_dir, nobody.pw_uid, nobody.pw_gid)
            # A name relative to the working directory: nobody may not pass the folders above.
            cwd = self.dump_dir
            command += ["-d", "%Y%m%d%H%M%S."]
        command += [f"127.0.0.1:{self.port}", str(self.backlog)]
        self.process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self._reader = threading.Thread(target=self._follow, name="smtp-sink-counter", daemon=True)
        self._reader.start()
        try:
            wait_for_greeting(self.port, timeout=10)
        except HarnessError:
            self.stop()
            raise
        return self

    def _follow(self) -> None:
        """Reader thread: parse smtp-sink -c's counters ("sess=N quit=N mesg=N", each ended by
        a carriage return) and note when the message count went up."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        pending = b""
        while chunk := os.read(fd, 65536):
            now = time.monotonic()
            pending += chunk
            *records, pending = pending.split(b"\r")
            for record in reversed(records):
                found = re.search(rb"mesg=(\d+)", record)
                if found:
                    self._counted(int(found.group(1)), now)
                    break

    def _counted(self, count: int, now: float) -> None:
        with self._lock:
            if count > self._count:
                if self._first_at is None:
                    self._first_at = now
                self._count = count
                self._last_at = now

    @property
    def received(self) -> int:
        """Messages the sink has taken (ended with "." and answered 250) so far."""
        with self._lock:
            return self._count

    @property
    def first_at(self) -> float | None:
        """``time.monotonic()`` when the first message was taken, or None before it."""
        with self._lock:
            return self._first_at

    @property
    def last_at(self) -> float | None:
        """``time.monotonic()`` when the last message so far was taken, or None before any."""
        with self._lock:
            return self._last_at

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until the sink has taken ``count`` messages; False if it had not by ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.received < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def messages(self) -> list[bytes]:
        """Each message dumped so far (needs ``dump_dir``), in the order of the file names."""
        if self.dump_dir is None:
            raise HarnessError("the sink keeps no messages: give it a dump_dir")
        return [path.read_bytes() for path in sorted(self.dump_dir.iterdir()) if path.is_file()]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- the private Postfix ------------------------------------------------------------------------

# Only the services a relay needs, none chrooted (the chroot would need copies of /etc files).
# smtp inet's address is filled in; postlog writes maillog_file, as no syslog is assumed.
MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
proxywrite unix - - n -  1 proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixInstance:
    """A private Postfix in a new folder under ``parent`` (by default the system's temporary
    folder; it must be world-searchable), removed when stopped: smtpd on 127.0.0.1:``port`` (a
    free one by default) relaying mail for any domain from loopback to
    ``relay_host``:``relay_port``.

    ``process_limit`` is default_process_limit (smtpd, cleanup, smtp processes each);
    ``destination_concurrency`` the parallel deliveries to the relay host (Postfix's default
    is 20). Must run as root (Postfix's master does); its daemons run as the ``postfix`` user.
    """

    def __init__(
        self,
        relay_host: str,
        relay_port: int,
        *,
        port: int | None = None,
        process_limit: int = 100,
        destination_concurrency: int = 20,
        parent: Path | None = None,
    ) -> None:
        # Postfix's daemons open files by absolute path as the postfix user, so the instance
        # cannot live in pytest's tmp_path (under a root-only folder): it gets a folder of its
        # own in the system's temporary folder, removed by stop().
        parent = parent or Path(tempfile.gettempdir())
        closed = [str(p) for p in (parent, *parent.parents) if not p.stat().st_mode & 0o001]
        if closed:
            raise HarnessError(
                f"the private Postfix needs a folder others may pass through; {closed[0]} is "
                "not (give another parent)"
            )
        root = Path(tempfile.mkdtemp(prefix="postfix-", dir=parent))
        root.chmod(0o755)
        self.root = root
        self.config_directory = root / "etc"
        self.queue_directory = root / "spool"
        self.data_directory = root / "lib"
        self.maillog = root / "maillog"
        self.relay_host = relay_host
        self.relay_port = relay_port
        self.port = port or free_port()
        self.process_limit = process_limit
        self.destination_concurrency = destination_concurrency
        self.master_pid: int | None = None

    # -- configuration

    def main_cf(self) -> dict[str, str]:
        """The instance's main.cf, as parameter -> value."""
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_directory),
            "data_directory": str(self.data_directory),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.root),
            "myhostname": "postfix.loopback.test",
            "mydomain": "loopback.test",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            # Nothing is delivered here: every domain goes on to the relay host, from loopback.
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relay_domains": "",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relayhost": f"[{self.relay_host}]:{self.relay_port}",
            # No DNS: the relay host is an address, and CI machines may have no resolver.
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "default_process_limit": str(self.process_limit),
            "default_destination_concurrency_limit": str(self.destination_concurrency),
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtputf8_enable": "no",
            "biff": "no",
            "append_dot_mydomain": "no",
            # A test that fails leaves no mail retried for days.
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
        }

    def write_config(self) -> None:
        self.config_directory.mkdir(parents=True, exist_ok=True)
        lines = [f"{name} = {value}" for name, value in self.main_cf().items()]
        (self.config_directory / "main.cf").write_text("\n".join(lines) + "\n")
        master = MASTER_CF.format(listen=f"127.0.0.1:{self.port}")
        (self.config_directory / "master.cf").write_text(master)
        # The queue folder must be root's; Postfix makes its subfolders (owned by postfix).
        self.queue_directory.mkdir(mode=0o755, exist_ok=True)
        self.data_directory.mkdir(mode=0o755, exist_ok=True)
        shutil.chown(self.data_directory, "postfix")

    # -- running

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``postfix -c <our config> ARGS``."""
        return subprocess.run(
            [require(POSTFIX), "-c", str(self.config_directory), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> PostfixInstance:
        if os.geteuid() != 0:
            raise HarnessError("a private Postfix must be started as root (its master is root's)")
        self.write_config()
        try:
            started = self.postfix("start")
            if started.returncode != 0:
                raise HarnessError(f"postfix start failed {started.stderr.strip()}".strip())
            self.master_pid = self._read_master_pid()
            wait_for_greeting(self.port)
        except HarnessError as error:
            # Nothing is left running or on disk; the log says why (it goes with the folder).
            log = self.log()
            self.stop()
            raise HarnessError(f"{error}; the instance's log:\n{log}") from error
        return self

    def _read_master_pid(self, timeout: float = 10.0) -> int:
        pid_file = self.queue_directory / "pid" / "master.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return int(pid_file.read_text().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        raise HarnessError(f"Postfix's master wrote no PID in {pid_file}")

    def processes(self) -> list[int]:
        """The master's PID and its live descendants' (empty once stopped)."""
        if self.master_pid is None:
            return []
        return sorted(process_tree(self.master_pid))

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the master and every daemon it ran."""
        if self.master_pid is None:
            raise HarnessError("the private Postfix is not running")
        return tree_cpu_seconds(self.master_pid)

    def queued(self) -> int:
        """Messages in the instance's queue not yet delivered (or bounced)."""
        count = 0
        for folder in QUEUE_FOLDERS:
            for _, _, files in os.walk(self.queue_directory / folder):
                count += len(files)
        return count

    def log(self) -> str:
        """The instance's log so far (maillog_file), for failure messages."""
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return "(no maillog)"

    def send(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Submit one message over SMTP to the instance's smtpd."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.sendmail(sender, recipients, message)

    def stop(self, timeout: float = 30.0) -> None:
        """``postfix stop``, then wait for the master and its daemons to end; kill whatever of
        the instance is left after ``timeout``, and remove its folder. Only this instance's PIDs
        are signalled."""
        if self.master_pid is None:
            # A start that failed half-way may have left a master behind.
            with contextlib.suppress(FileNotFoundError, ValueError):
                pid_file = self.queue_directory / "pid" / "master.pid"
                self.master_pid = int(pid_file.read_text().strip())
        if self.master_pid is None:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        pids = self.processes()
        self.postfix("stop")
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in pids if _alive(pid)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.master_pid = None
        shutil.rmtree(self.root, ignore_errors=True)
        if left:
            raise HarnessError(f"Postfix processes {left} outlived postfix stop; killed")

    def __enter__(self) -> PostfixInstance:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return state[state.rindex(")") + 2] != "Z"
