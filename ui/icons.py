"""The console's icons as QIcons, made once from the SVGs in ``resources``."""

from __future__ import annotations

import logging
from functools import cache

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

import resources

log = logging.getLogger(__name__)

# Icons the console uses that ``resources`` does not draw (yet): a Qt standard icon stands in.
_STANDARD: dict[str, QStyle.StandardPixmap] = {
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "cancel": QStyle.StandardPixmap.SP_DialogCancelButton,
    "apply": QStyle.StandardPixmap.SP_DialogApplyButton,
}


@cache
def icon(name: str) -> QIcon:
    """The QIcon of a console icon (a name from ``resources.ICON_NAMES``); raises KeyError."""
    if name in _STANDARD and name not in resources.ICON_NAMES:
        return QApplication.style().standardIcon(_STANDARD[name])
    return QIcon(str(resources.icon_path(name)))


@cache
def app_icon() -> QIcon:
    """Postroom's application icon, with every rendered PNG size and the SVG for the rest."""
    result = QIcon()
    for size in resources.APP_ICON_SIZES:
        result.addFile(str(resources.app_icon_path(size)))
    result.addFile(str(resources.app_icon_path()))
    return result
