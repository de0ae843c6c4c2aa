"""The frozen bundle's entry point: the same ``postroom`` command as the installed script."""

from app.cli import entry_point

if __name__ == "__main__":
    entry_point()
