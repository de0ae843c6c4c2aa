"""The console's one task runner: app/ callables run off the GUI thread, results come back on it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.errors import PostroomError

log = logging.getLogger(__name__)

_EXPECTED: tuple[type[Exception], ...] = (PostroomError,)
"""Failures the caller reports itself; anything else is also logged with its traceback."""


class Task(QObject):
    """One piece of background work; its signals are delivered on the GUI thread.

    ``succeeded(result)`` or ``failed(error)`` is emitted once, then ``finished()``.
    """

    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()
    # Emitted from the worker thread; queued to this object's (the GUI) thread.
    _done = Signal(bool, object)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.done = False
        self._done.connect(self._deliver)

    def _deliver(self, ok: bool, value: object) -> None:
        """GUI thread: hand the outcome to whoever listens."""
        self.done = True
        if ok:
            self.succeeded.emit(value)
        else:
            self.failed.emit(value)
        self.finished.emit()


class _Runnable(QRunnable):
    """Worker thread: call the function and post its outcome back to the task."""

    def __init__(self, task: Task, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._task = task
        self._fn = fn
        self._args = args

    def run(self) -> None:
        try:
            result = self._fn(*self._args)
        except Exception as error:  # delivered to the GUI thread, which decides what to show
            if not isinstance(error, _EXPECTED):
                log.exception("background task %s failed", self._task.name)
            self._task._done.emit(False, error)
        else:
            self._task._done.emit(True, result)


class TaskRunner(QObject):
    """Runs callables on a private thread pool. Create, submit and shut down on the GUI thread."""

    def __init__(
        self, parent: QObject | None = None, max_threads: int = 4, keep_thread: bool = False
    ) -> None:
        """``keep_thread`` with ``max_threads=1``: every task runs on the same thread."""
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        if keep_thread:
            self._pool.setExpiryTimeout(-1)
        self._running: set[Task] = set()

    def submit(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> Task:
        """Run ``fn(*args)`` on a worker thread; the callbacks run later on the GUI thread."""
        task = Task(name, self)
        if on_success is not None:
            task.succeeded.connect(on_success)
        if on_failure is not None:
            task.failed.connect(on_failure)
        self._running.add(task)
        task.finished.connect(lambda: self._forget(task))
        self._pool.start(_Runnable(task, fn, args))
        return task

    def _forget(self, task: Task) -> None:
        self._running.discard(task)
        task.deleteLater()

    @property
    def busy(self) -> bool:
        """Whether any submitted task has not yet delivered its outcome."""
        return bool(self._running)

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """At exit or in tests only: block until every submitted task has run."""
        return self._pool.waitForDone(timeout_ms)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """At exit only: wait for running work to end (queued outcomes are dropped)."""
        self._pool.clear()
        return self._pool.waitForDone(timeout_ms)
