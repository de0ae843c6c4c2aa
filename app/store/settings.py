"""SQL for settings: one JSON value per key."""

from __future__ import annotations

import json
from typing import Any

from app.store.database import Connection


def load_settings(conn: Connection) -> dict[str, Any]:
    return {row["key"]: json.loads(row["value"]) for row in conn.execute("SELECT * FROM settings")}


def save_setting(conn: Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )
