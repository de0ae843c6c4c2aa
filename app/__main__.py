"""``python -m app`` runs the ``postroom`` command."""

from app.cli import entry_point

entry_point()
