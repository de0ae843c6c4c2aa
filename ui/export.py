"""Export List: where to write the result pane, and writing it as CSV whole or not at all."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from app.errors import PostroomError

log = logging.getLogger(__name__)


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> int:
    """Worker thread: write the rows to ``path`` whole or not at all; the number of rows."""
    partial = path.with_name(f".{path.name}.part")
    count = 0
    try:
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise PostroomError(f"Cannot write {path}: {error.strerror or error}.") from error
    return count


class ExportDialog:
    """Action > Export List…: where to write the CSV (tests replace ``ask_path``)."""

    @staticmethod
    def ask_path(parent: QWidget | None, suggested: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(
            parent, "Export List", suggested, "CSV files (*.csv);;All files (*)"
        )
        return Path(path) if path else None
