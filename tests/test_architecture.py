"""The engine never loads Qt: every ``app`` module imported in a fresh interpreter."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import app
from tests.conftest import ROOT


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
        " ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def test_no_sql_outside_the_store() -> None:
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        if "store" in path.relative_to(ROOT / "app").parts:
            continue
        text = path.read_text()
        if ".execute(" in text or "executemany(" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
