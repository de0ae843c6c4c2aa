"""The Dovecot service: Postroom's Dovecot as a child process, started, watched and stopped."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from app.dovecot import config
from app.dovecot.config import DovecotPaths, Listener
from app.errors import PostroomError
from app.mailstore import ownership
from app.settings import Settings, load_settings
from app.smtp import tls
from app.store import Store

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
_PROBLEM = re.compile(r"\b(Fatal|Panic|Error): (.*)")


def find_dovecot() -> str | None:
    """The ``dovecot`` program, or None when it is not installed."""
    return shutil.which("dovecot", path=_SEARCH_PATH)


class DovecotService:
    """Dovecot with Postroom's configuration, serving IMAP4 and POP3 from the users' Maildirs.

    ``start()`` writes the configuration from the current settings, starts ``dovecot -F -c``
    as a child and returns once every listener accepts connections; it raises a PostroomError
    with one line (Dovecot's own error line where it gave one) when Dovecot is missing or does
    not start. ``stop()`` ends that child by its PID: SIGTERM, then SIGKILL. Both may be called
    from any thread.
    """

    def __init__(self, store: Store, *, executable: str | None = None) -> None:
        self._store = store
        self._executable = executable
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._listeners: list[Listener] = []
        self.paths: DovecotPaths = config.dovecot_paths(store.paths)

    @property
    def is_running(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def listeners(self) -> list[Listener]:
        """Where the running Dovecot listens (empty when it is not running)."""
        return list(self._listeners) if self.is_running else []

    def start(self) -> list[Listener]:
        """Start Dovecot and wait until it listens; where it listens (empty when IMAP4 and POP3
        are both off, and nothing was started). Dovecot gets SIGTERM when the thread that
        started it ends (``setpriv --pdeathsig``), so a killed Postroom leaves none behind."""
        with self._lock:
            if self.is_running:
                return list(self._listeners)
            executable = self._executable or find_dovecot()
            if executable is None or not os.access(executable, os.X_OK):
                raise PostroomError(
                    "Dovecot is not installed, so IMAP4 and POP3 are off: install dovecot-imapd, "
                    "dovecot-pop3d and dovecot-sqlite (./run installs them)."
                )
            settings = load_settings(self._store)
            wanted = config.listeners(settings)
            if not wanted:
                log.info("IMAP4 and POP3 are both off: Dovecot is not started")
                return []
            self._prepare(settings)
            offset = self.paths.log.stat().st_size if self.paths.log.exists() else 0
            command = [executable, "-F", "-c", str(self.paths.config)]
            setpriv = shutil.which("setpriv", path=_SEARCH_PATH)
            if setpriv is not None:
                # Dovecot ends with the thread that started it, even if Postroom is killed.
                command = [setpriv, "--pdeathsig", "TERM", "--", *command]
            with open(self.paths.startup_log, "wb") as output:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C reaches Postroom, which stops it
                    close_fds=True,
                )
            self._process = process
            try:
                self._wait_listening(process, wanted, offset)
            except BaseException:
                self._end(process)
                self._process = None
                raise
            self._listeners = wanted
            log.info(
                "Dovecot (PID %d) listens on %s",
                process.pid,
                ", ".join(f"{item.host}:{item.port} ({item.name})" for item in wanted),
            )
            return list(wanted)

    def stop(self) -> None:
        """Stop the Dovecot this service started (by its PID), if it runs."""
        with self._lock:
            process, self._process = self._process, None
            self._listeners = []
            if process is not None:
                self._end(process)
                log.info("Dovecot (PID %d) stopped", process.pid)

    def problem(self) -> str | None:
        """Dovecot's last error line since it started, if any (for the console and the CLI)."""
        return _last_problem(self.paths, 0)

    # -- inside ----------------------------------------------------------------------------

    def _prepare(self, settings: Settings) -> None:
        root = self._store.paths
        users = config.run_as()
        cert, key = tls.certificate_files(settings, root)
        folder = self.paths.folder
        try:
            for made in (folder, self.paths.state_dir):
                made.mkdir(mode=0o700, parents=True, exist_ok=True)
            passages = (root.mailboxes, folder)
            blocked = ownership.unreachable_ancestor(root.root)
            if blocked is not None:
                raise PostroomError(
                    f"Dovecot's mail user cannot reach the data directory {root.root}: "
                    f"{blocked} is closed to it. Use a data directory under a folder others "
                    "may enter (e.g. /var/lib/postroom) or run Postroom as a user of its own."
                )
            ownership.open_passage(root.root, passages)
            ownership.adopt(root.mailboxes)
            _write_private(self.paths.sql_config, config.render_sql(root))
            _write_private(
                self.paths.config,
                config.render(settings, root, self.paths, cert, key, users),
            )
        except OSError as error:
            raise PostroomError(
                f"Cannot write Dovecot's configuration in {folder}: "
                f"{error.strerror or error}. Check the data directory's permissions."
            ) from error

    def _wait_listening(
        self, process: subprocess.Popen[bytes], wanted: list[Listener], offset: int
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(wanted)
        while waiting:
            if process.poll() is not None:
                problem = (
                    _last_problem(self.paths, offset) or f"it exited with {process.returncode}"
                )
                raise PostroomError(f"Dovecot did not start: {problem} (see {self.paths.log}).")
            if _accepts(waiting[0]):
                waiting.pop(0)
                continue
            if time.monotonic() > deadline:
                item = waiting[0]
                late = _last_problem(self.paths, offset)
                raise PostroomError(
                    f"Dovecot did not listen on {item.host}:{item.port} ({item.name}) within "
                    f"{START_TIMEOUT:.0f} s" + (f": {late}" if late else "") + "."
                )
            time.sleep(0.05)

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("Dovecot (PID %d) ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()


def _accepts(item: Listener) -> bool:
    family = socket.AF_INET6 if ":" in item.host else socket.AF_INET
    host = "127.0.0.1" if item.host in ("0.0.0.0", "*") else item.host
    host = "::1" if host == "::" else host
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect((host, item.port))
        except OSError:
            return False
    return True


def _last_problem(paths: DovecotPaths, offset: int) -> str | None:
    """The last Fatal / Panic / Error line Dovecot wrote (startup output first, then its log
    after ``offset``), without its time stamp and process name."""
    lines: list[str] = []
    for path, start in ((paths.startup_log, 0), (paths.log, offset)):
        try:
            with open(path, "rb") as file:
                file.seek(start)
                lines += file.read().decode("utf-8", "replace").splitlines()
        except OSError:
            continue
    problems = [match for line in lines if (match := _PROBLEM.search(line))]
    # An Error line says what went wrong ("bind(127.0.0.1, 1143) failed: Address already in
    # use"); the Fatal one after it often only that Dovecot gave up ("Failed to start listeners").
    errors = [m for m in problems if m.group(1) == "Error"]
    chosen = errors or problems
    return chosen[-1].group(2).strip() if chosen else None


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)
