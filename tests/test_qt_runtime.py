"""The pinned Qt binding keeps Python's reference counts right (PySide6 6.12.0 did not on 3.11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import json, sys
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
class Emitter(QObject):
    fired = Signal(bool)
emitter, label = Emitter(), QLabel()
none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
for _ in range(20_000):
    label.setText("x")          # a method returning None
    emitter.fired.emit(True)    # a signal carrying a bool
print(json.dumps([sys.getrefcount(None) - none_before, sys.getrefcount(True) - true_before]))
"""


def test_void_calls_and_signals_do_not_leak_or_steal_references() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    none_delta, true_delta = json.loads(result.stdout)
    # A stolen reference per call would show as -20000 (and abort the interpreter soon after).
    assert abs(none_delta) < 100 and abs(true_delta) < 100
