"""Postroom's bundled files (icons, help pages), found with importlib.resources; no Qt here."""

from __future__ import annotations

from importlib import resources as _resources
from pathlib import Path

# Who the console is to the desktop: the .desktop file and AppStream id, and the window class
# (Qt's X11 WM_CLASS is QGuiApplication.applicationName()), which the .desktop file's
# StartupWMClass names. The console sets both: setApplicationName(APP_NAME),
# setDesktopFileName(APP_ID).
APP_ID = "org.postroom.Postroom"
APP_NAME = "Postroom"

# The console's tree-node and action icons, one SVG each in ``icons/`` (drawn on a 16 px grid).
TREE_ICONS: tuple[str, ...] = (
    "organization",
    "recipients",
    "recipient-policies",
    "policy",
    "recipient-update-service",
    "domains",
    "all-recipients",
    "user",
    "contact",
    "group",
    "servers",
    "server",
    "protocols",
    "smtp-virtual-server",
    "current-sessions",
    "queues",
    "mailbox-store",
    "mailbox",
    "connectors",
    "tools",
    "message-tracking",
)
ACTION_ICONS: tuple[str, ...] = (
    "back",
    "forward",
    "up",
    "properties",
    "refresh",
    "export-list",
    "new",
    "delete",
    "move-up",
    "move-down",
    "start",
    "stop",
    "pause",
    "update-now",
    "rebuild",
    "check-dns",
    "help",
)
# Icons of states in dialogs and lists: a refusal, a cancelled or applied change.
STATUS_ICONS: tuple[str, ...] = ("warning", "cancel", "apply")
ICON_NAMES: tuple[str, ...] = TREE_ICONS + ACTION_ICONS + STATUS_ICONS

# The application icon: ``app/postroom.svg`` and PNGs rendered from it by
# ``packaging/render-icons.sh`` (committed, so nothing needs a renderer at run time).
APP_ICON_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256)


def _file(*parts: str) -> Path:
    """A bundled file as a real path (wheels and the frozen bundle both install unpacked)."""
    traversable = _resources.files(__name__).joinpath(*parts)
    path = Path(str(traversable))
    if not path.is_file():
        raise FileNotFoundError(f"Postroom's bundled file {'/'.join(parts)} is missing: {path}")
    return path


def icon_path(name: str) -> Path:
    """The SVG file of a console icon (one of ``ICON_NAMES``)."""
    if name not in ICON_NAMES:
        raise KeyError(f"no icon named {name!r}; known icons: {', '.join(ICON_NAMES)}")
    return _file("icons", f"{name}.svg")


def icon_bytes(name: str) -> bytes:
    """The SVG text of a console icon, as bytes."""
    return icon_path(name).read_bytes()


def app_icon_path(size: int | None = None) -> Path:
    """The application icon: the SVG when ``size`` is None, else the PNG of that pixel size."""
    if size is None:
        return _file("app", "postroom.svg")
    if size not in APP_ICON_SIZES:
        sizes = ", ".join(map(str, APP_ICON_SIZES))
        raise KeyError(f"no {size} px application icon; sizes: {sizes}")
    return _file("app", f"postroom-{size}.png")


def help_topics() -> tuple[str, ...]:
    """The names of the built-in help pages (``help/<topic>.html``), sorted."""
    folder = _resources.files(__name__).joinpath("help")
    return tuple(
        sorted(
            entry.name.removesuffix(".html")
            for entry in folder.iterdir()
            if entry.name.endswith(".html")
        )
    )


def help_path(topic: str) -> Path:
    """The HTML file of one built-in help page (one of ``help_topics()``); pages link by name."""
    if topic not in help_topics():
        raise KeyError(f"no help page named {topic!r}; pages: {', '.join(help_topics())}")
    return _file("help", f"{topic}.html")


def help_html(topic: str) -> str:
    """The HTML of one built-in help page."""
    return help_path(topic).read_text(encoding="utf-8")
