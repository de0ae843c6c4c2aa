"""What every subcommand shares: the data directory, output as text or JSON, refusals."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app import organization, paths
from app.store import Store


class Context:
    """The data directory of this invocation; the store is opened on first use."""

    def __init__(self, data_dir: str | None) -> None:
        self.data_dir: Path = paths.resolve_data_dir(data_dir)
        self._store: Store | None = None

    def store(self) -> Store:
        """The open store; a new data directory gets its organisation and Default Policy."""
        if self._store is None:
            self._store = Store.open(self.data_dir)
            if organization.get_organization(self._store) is None:
                organization.initialize(self._store)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def emit(args: argparse.Namespace, text: str, data: Any) -> int:
    """Print ``data`` as JSON with --json, else ``text``; exit status 0."""
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif text:
        print(text)
    return 0


def fail(message: str) -> int:
    """Print a one-line refusal on stderr; exit status 1."""
    print(f"postroom: {' '.join(message.split())}", file=sys.stderr)
    return 1


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns for human-readable listings."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def setting_text(key: str, value: Any) -> str:
    """A setting's value as ``show`` prints it and ``set`` reads it back: durations as 15m /
    12h, on / off, lists comma-separated, "(none)" and "(not set)" for empty ones."""
    from app.settings import SETTING_FIELDS

    spec = SETTING_FIELDS.get(key)
    show = spec.metadata.get("show") if spec is not None else None
    if show is not None:
        return str(show(value))
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    return str(value) if value != "" else "(not set)"


def settings_table(settings: Any, keys: Iterable[str]) -> str:
    """The Setting / Value / Meaning table of ``keys`` that every ``show`` prints."""
    from app.settings import SETTING_FIELDS

    rows = [
        [key, setting_text(key, getattr(settings, key)), str(SETTING_FIELDS[key].metadata["help"])]
        for key in keys
    ]
    return table(["Setting", "Value", "Meaning"], rows)
