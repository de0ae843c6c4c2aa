"""rspamd as Postroom's child: started with the private configuration, watched, restarted when it
ends, and stopped by its own process id."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

from app.filtering import config
from app.settings import Settings, load_settings
from app.store import Store

log = logging.getLogger(__name__)

NOT_INSTALLED = "rspamd is not installed: apt install rspamd (mail is taken unscanned meanwhile)"
# The account Debian's package makes; workers run as it when Postroom runs as root.
RSPAMD_USER = "_rspamd"
_READY_TIMEOUT = 120.0  # the first start compiles its regular expressions (some seconds)
_POLL = 0.1
_MAX_BACKOFF = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RspamdSupervisor:
    """One rspamd for one data directory, on a loopback port.

    ``start()`` returns at once; the thread "postroom-rspamd" starts rspamd, waits until it
    answers, and starts it again whenever it ends, until ``stop()``. ``error`` holds one line
    saying why rspamd is not running (empty while it runs). Any thread may read ``port``,
    ``pid``, ``is_ready`` and ``error``.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.folders = config.folders(store.paths)
        self.port = 0
        self.error = ""
        self.installed = True
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.restarts = 0
        self.signs = False  # a DKIM key is configured: outgoing mail goes to rspamd to be signed

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and self.pid is not None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float) -> bool:
        """Whether rspamd answers within ``timeout`` seconds (any thread)."""
        deadline = time.monotonic() + timeout
        while not self.is_ready:
            left = deadline - time.monotonic()
            if left <= 0 or not self.installed:
                return False
            self._ready.wait(min(left, _POLL))
            if not self.is_ready:
                time.sleep(_POLL)  # a process that just ended is seen by its watcher soon
        return True

    def start(self) -> None:
        """Start watching rspamd; says in ``error`` (and the log, one line) if it cannot run."""
        with self._lock:
            if self._thread is not None:
                return
            settings = load_settings(self._store)
            binary = shutil.which(settings.rspamd_binary)
            if binary is None:
                self.installed = False
                self.error = NOT_INSTALLED
                if settings.rspamd_binary != "rspamd":
                    self.error = (
                        f"rspamd is not installed at {settings.rspamd_binary}: apt install "
                        "rspamd, or set rspamd_binary (mail is taken unscanned meanwhile)"
                    )
                log.error("%s", self.error)
                return
            self.installed = True
            self._stopping.clear()
            self._stop_stale()
            signing = config.signing_conf(self._store)
            self.signs = "selector" in signing
            self._thread = threading.Thread(
                target=self._run, args=(binary, settings, signing), name="postroom-rspamd"
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop rspamd (SIGTERM, then SIGKILL after ``timeout``) and the watching thread."""
        with self._lock:
            self._stopping.set()
            thread, self._thread = self._thread, None
            self._terminate(timeout)
            if thread is not None:
                thread.join()
            self._ready.clear()

    # -- the watching thread ----------------------------------------------------------------

    def _run(self, binary: str, settings: Settings, signing: str) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._launch(binary, settings, signing)
            except OSError as error:
                self.error = f"rspamd could not start: {error.strerror or error}"
                log.error("%s", self.error)
            else:
                self._watch()
            if self._stopping.is_set():
                break
            self.restarts += 1
            backoff = 1.0 if time.monotonic() - started > 60 else min(backoff * 2, _MAX_BACKOFF)
            self._stopping.wait(backoff)

    def _launch(self, binary: str, settings: Settings, signing: str) -> None:
        port = settings.rspamd_port or _free_port()
        where = self.folders
        config.write(where, settings, port, signing)
        command = [binary, "-f", "-c", str(where.main_conf), *where.variables()]
        if os.geteuid() == 0:
            # rspamd refuses to run its workers as root; they run as Debian's rspamd account.
            try:
                account = pwd.getpwnam(RSPAMD_USER)
            except KeyError:
                raise OSError(f"the account {RSPAMD_USER} is missing: apt install rspamd") from None
            for folder in (where.db, where.log_dir):
                os.chown(folder, account.pw_uid, account.pw_gid)
            command += ["-u", RSPAMD_USER, "-g", RSPAMD_USER]
        with open(where.log_dir / "stderr.log", "wb") as errors:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                cwd=str(where.root),
                close_fds=True,
                start_new_session=True,  # a terminal's Ctrl-C reaches us; we stop it in order
            )
        self._process = process
        self.port = port
        (where.run / "postroom-rspamd.pid").write_text(f"{process.pid}\n")
        log.info("rspamd started (pid %d) on 127.0.0.1:%d", process.pid, port)

    def _watch(self) -> None:
        """Wait until rspamd answers, then until it ends (or we stop)."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + _READY_TIMEOUT
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while not self._stopping.is_set() and process.poll() is None:
                try:
                    if client.get(f"{self.url}/ping").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.error = f"rspamd did not answer on {self.url} within {_READY_TIMEOUT:g}s"
                    log.error("%s; restarting it", self.error)
                    self._terminate(5.0)
                    return
                self._stopping.wait(_POLL)
        if process.poll() is None and not self._stopping.is_set():
            self.error = ""
            self._ready.set()
            log.info("rspamd answers on %s", self.url)
        while not self._stopping.is_set() and process.poll() is None:
            self._stopping.wait(_POLL)
        self._ready.clear()
        _kill_group(process)  # workers outlive a killed main process and keep the port
        if not self._stopping.is_set():
            self.error = f"rspamd stopped ({_ended(process)}): {self._last_words()}"
            log.error("%s; starting it again", self.error)

    def _terminate(self, timeout: float) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _kill_group(process)
        with contextlib.suppress(OSError):
            (self.folders.run / "postroom-rspamd.pid").unlink()

    def _stop_stale(self) -> None:
        """An rspamd a killed Postroom left running on this configuration is stopped."""
        pid_file = self.folders.run / "postroom-rspamd.pid"
        try:
            pid = int(pid_file.read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.folders.main_conf).encode() in command:
            log.warning("stopping rspamd (pid %d) left by an earlier Postroom", pid)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)

    def _last_words(self) -> str:
        """rspamd's last error line (its stderr, else its log), for the one-line report."""
        for source in (self.folders.log_dir / "stderr.log", self.folders.log_file):
            with contextlib.suppress(OSError):
                lines = [
                    line.strip()
                    for line in source.read_text(errors="replace").splitlines()
                    if line.strip()
                ]
                for line in reversed(lines[-50:]):
                    if any(word in line.lower() for word in ("error", "cannot", "fatal")):
                        return line[:300]
        return f"see {self.folders.log_file}"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """End what is left of rspamd's process group (its own session, led by the main process)."""
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)


def _ended(process: subprocess.Popen[bytes]) -> str:
    code = process.returncode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
