"""The console's icons as QIcons, made once from the SVGs in ``resources``."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

import resources


@cache
def icon(name: str) -> QIcon:
    """The QIcon of a console icon (a name from ``resources.ICON_NAMES``); raises KeyError."""
    return QIcon(str(resources.icon_path(name)))


@cache
def app_icon() -> QIcon:
    """Postroom's application icon, with every rendered PNG size and the SVG for the rest."""
    result = QIcon()
    for size in resources.APP_ICON_SIZES:
        result.addFile(str(resources.app_icon_path(size)))
    result.addFile(str(resources.app_icon_path()))
    return result
