"""The house's shape: no import loops, the engine never loads Qt or the console, the console uses
the store's public names only, and SQL lives in app/store/ alone."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import app
from tests import architecture
from tests.architecture import (
    console_in_engine,
    import_cycles,
    sql_outside_store,
    store_internals_in_console,
)

ROOT = Path(__file__).resolve().parent.parent


def report(found: list[str]) -> str:
    return "\n".join(["", *found])


# --- the real tree ------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    found = import_cycles(ROOT)
    assert found == [], (
        f"import loops (module level, in functions or under TYPE_CHECKING):{report(found)}"
    )


def test_the_engine_never_imports_the_console_or_qt() -> None:
    found = console_in_engine(ROOT)
    assert found == [], f"app/ reaches for ui/ or Qt:{report(found)}"


def test_every_app_module_imports_without_qt() -> None:
    modules = sorted(
        name
        for _, name, _ in pkgutil.walk_packages(app.__path__, prefix="app.")
        if name != "app.__main__"
    )
    assert "app.policies" in modules and "app.store.database" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('ui', 'PySide6', 'shiboken6', 'PyQt5', 'PyQt6'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_console_uses_only_the_stores_public_names() -> None:
    found = store_internals_in_console(ROOT)
    assert found == [], (
        f"ui/ reaches into app.store (use `from app.store import ...`):{report(found)}"
    )


def test_no_sql_outside_the_store() -> None:
    found = sql_outside_store(ROOT)
    assert found == [], f"SQL outside app/store/:{report(found)}"


# --- each rule catches a planted violation --------------------------------------------------------

CLEAN = {
    "app/__init__.py": '"""The engine."""\n',
    "app/model.py": '"""Types."""\n\nNAME = "Select a recipient from the list."\n',
    "app/engine.py": (
        """
        '''Uses the store and the model, one way.'''
        from typing import TYPE_CHECKING

        from app import model
        from app.store import Store

        if TYPE_CHECKING:
            from app.store.database import Database

        def later() -> None:
            import importlib

            importlib.import_module("app.model")
        """
    ),
    "app/store/__init__.py": (
        """
        '''The store.'''
        from app.store.database import Store

        __all__ = ["Store"]
        """
    ),
    "app/store/database.py": (
        """
        '''The only SQL.'''
        import sqlite3

        class Store:
            def names(self, conn: sqlite3.Connection) -> list[str]:
                return conn.execute("SELECT name FROM recipients").fetchall()
        """
    ),
    "app/store/rus.py": '"""Per-table SQL."""\n\nSQL = "UPDATE recipients SET usn = ?"\n',
    "ui/__init__.py": '"""The console."""\n',
    "ui/window.py": (
        """
        '''The window.'''
        from PySide6.QtWidgets import QMainWindow

        from app import engine
        from app.store import Store
        from ui import views

        class MainWindow(QMainWindow):
            pass
        """
    ),
    "ui/views.py": (
        """
        '''The views.'''
        from PySide6.QtWidgets import QWidget

        from app.model import NAME
        """
    ),
}


def tree(tmp_path: Path, planted: dict[str, str] | None = None) -> Path:
    """A small fake app/ and ui/ under tmp_path: CLEAN with the planted files added or replaced."""
    for path, text in {**CLEAN, **(planted or {})}.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return tmp_path


def plant(tmp_path: Path, path: str, text: str) -> Path:
    return tree(tmp_path, {path: text})


def test_a_clean_tree_passes_every_rule(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert import_cycles(root) == []
    assert console_in_engine(root) == []
    assert store_internals_in_console(root) == []
    assert sql_outside_store(root) == []


def test_a_loop_hidden_in_a_function_is_a_loop(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "app/model.py",
        """
        '''Types that reach back to the engine, late.'''

        def engine_name() -> str:
            from app import engine

            return engine.__name__
        """,
    )
    [found] = import_cycles(root)
    assert found.startswith("2 modules in a loop: app.engine, app.model;")
    assert "app/engine.py:4" in found and "app/model.py:4" in found


def test_a_loop_under_type_checking_through_a_package_is_a_loop(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "ui/views.py",
        """
        '''Views that name the window for types.'''
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from ui.window import MainWindow
        """,
    )
    assert import_cycles(root) == [
        "2 modules in a loop: ui.views, ui.window; "
        "e.g. ui.views (ui/views.py:5) -> ui.window (ui/window.py:6) -> ui.views"
    ]


def test_a_loop_through_importlib_is_a_loop(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "app/model.py",
        """
        '''Types.'''
        import importlib

        ENGINE = importlib.import_module("app.engine")
        """,
    )
    [found] = import_cycles(root)
    assert found.startswith("2 modules in a loop: app.engine, app.model;")


def test_the_engine_loading_qt_by_name_is_found(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "app/model.py",
        """
        '''Types.'''
        import importlib

        def core() -> object:
            return importlib.import_module("PySide6.QtCore")
        """,
    )
    assert console_in_engine(root) == [
        "app/model.py:5: 'PySide6.QtCore'",
        "app/model.py:5: importlib.import_module('PySide6.QtCore')",
    ]


def test_the_engine_naming_the_console_any_way_is_found(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "app/model.py",
        """
        '''Types.'''
        import typing

        if typing.TYPE_CHECKING:
            import ui.window

        def console() -> object:
            return __import__("ui.views")

        CONSOLE = "ui.window:MainWindow"
        """,
    )
    assert console_in_engine(root) == [
        "app/model.py:10: 'ui.window:MainWindow'",
        "app/model.py:5: import ui.window",
        "app/model.py:8: 'ui.views'",
        "app/model.py:8: __import__('ui.views')",
    ]


def test_the_console_importing_a_store_table_module_is_found(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "ui/views.py",
        """
        '''The views.'''
        from app.store import Store, rus
        from app.store.rus import SQL

        def database() -> object:
            from app.store import database

            return database
        """,
    )
    assert store_internals_in_console(root) == [
        "ui/views.py:2: from app.store import rus",
        "ui/views.py:3: from app.store.rus import SQL",
        "ui/views.py:6: from app.store import database",
    ]


def test_the_console_importing_a_name_the_store_keeps_is_found(tmp_path: Path) -> None:
    root = plant(tmp_path, "ui/views.py", "'''Views.'''\nfrom app.store import sqlite3\n")
    assert store_internals_in_console(root) == [
        "ui/views.py:2: from app.store import sqlite3 (not public)"
    ]


def test_sql_text_outside_the_store_is_found(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "app/model.py",
        """
        '''Types.'''

        def names(conn: object) -> list[str]:
            query = f"SELECT name\\n  FROM {'recipients'} WHERE usn > ?"
            return conn.fetch(query)
        """,
    )
    assert sql_outside_store(root) == ["app/model.py:4: SQL 'SELECT name FROM'"]


def test_sql_statements_cursor_calls_and_sqlite3_in_the_console_are_found(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        "ui/views.py",
        """
        '''The views.'''
        import sqlite3

        STATEMENTS = [
            "INSERT OR REPLACE INTO recipients VALUES (?)",
            "DELETE FROM recipients",
            "CREATE INDEX recipients_usn ON recipients (usn)",
            "PRAGMA user_version",
        ]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(STATEMENTS[0], [])
        """,
    )
    assert sql_outside_store(root) == [
        "ui/views.py:12: .executemany(...)",
        "ui/views.py:2: import sqlite3",
        "ui/views.py:5: SQL 'INSERT OR REPLACE INTO'",
        "ui/views.py:6: SQL 'DELETE FROM'",
        "ui/views.py:7: SQL 'CREATE INDEX'",
        "ui/views.py:8: SQL 'PRAGMA user_version'",
    ]


def test_the_checker_reads_every_module_of_the_real_tree() -> None:
    source = architecture.Source(ROOT)
    assert {"app.cli", "app.store.database", "ui.app", "ui.main_window"} <= set(source.modules)
    assert all(not name.startswith("tests") for name in source.modules)
