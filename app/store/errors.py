"""The store's own errors: what a sqlite3 error becomes before it leaves ``app.store``."""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from app.errors import PostroomError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class DatabaseError(PostroomError):
    """The database could not be read or written; ``cause`` is what SQLite said."""

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class ConstraintError(DatabaseError):
    """A write broke one of the database's own rules (a duplicate name, alias or address)."""


def translate(error: sqlite3.Error) -> DatabaseError:
    """The app error for a sqlite3 error (raise it ``from error`` to keep the original)."""
    cause = str(error) or type(error).__name__
    if isinstance(error, sqlite3.IntegrityError):
        return ConstraintError(f"The database refused the change: {cause}.", cause)
    return DatabaseError(
        f"The database could not be read or written: {cause}. Check that the data directory "
        "can be written and that no other program holds the database, then try again.",
        cause,
    )


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn a sqlite3 error raised inside the block into the store's own error."""
    try:
        yield
    except sqlite3.Error as error:
        raise translate(error) from error


def translating(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` with a sqlite3 error it raises turned into the store's own error.

    For the store functions that are called outside ``Store.read``/``Store.write`` (which
    translate at their edge), such as the message tracking log's.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except sqlite3.Error as error:
            raise translate(error) from error

    return wrapper
