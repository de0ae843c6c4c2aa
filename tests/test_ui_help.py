"""Built-in help: a page for every console tree node, links that work, F1 and Help > About."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

import app
import resources
from app.store import SCHEMA_VERSION, Store
from ui.help import CONTENTS, AboutDialog, AboutFacts, HelpDialog, topic_for
from ui.main_window import MainWindow
from ui.tree import build_tree

# Icons of objects in the result pane rather than of tree nodes: they need no page of their own.
OBJECT_ICONS = {"policy", "user", "contact", "group", "mailbox"}
LINK = re.compile(r'href="([^"]+)"')


def node(key: str, icon: str) -> SimpleNamespace:
    return SimpleNamespace(key=key, icon=icon)


@pytest.mark.parametrize("concept", sorted(set(resources.TREE_ICONS) - OBJECT_ICONS))
def test_every_tree_concept_has_its_page(concept: str) -> None:
    assert topic_for(node(f"some/{concept}", concept)) == concept
    assert resources.help_html(concept).lstrip().startswith("<h2>")


def test_every_node_of_the_console_tree_has_its_own_page(data_dir: Path) -> None:
    store = Store.open(data_dir)
    try:
        root = build_tree(SimpleNamespace(store=store))  # type: ignore[arg-type]
    finally:
        store.close()
    topics = {tree_node.key: topic_for(tree_node) for tree_node in root.walk()}
    assert CONTENTS not in topics.values(), f"nodes without a page: {topics}"
    assert topics["servers/host/protocols/smtp"] == "smtp"


@pytest.mark.parametrize("topic", resources.help_topics())
def test_links_between_pages_lead_to_pages(topic: str) -> None:
    for target in LINK.findall(resources.help_html(topic)):
        assert target.endswith(".html"), target
        assert target.removesuffix(".html") in resources.help_topics(), f"{topic} -> {target}"


def test_unknown_node_falls_back_to_contents() -> None:
    assert topic_for(node("brand/new", "no-such-icon")) == CONTENTS
    assert topic_for(None) == CONTENTS


def test_unknown_page_is_refused() -> None:
    with pytest.raises(KeyError, match="no help page named 'nowhere'"):
        resources.help_path("nowhere")


def test_help_window_follows_links_and_goes_back(qtbot: QtBot) -> None:
    dialog = HelpDialog.show_topic(None, "recipient-policies")
    qtbot.addWidget(dialog)
    assert dialog.topic == "recipient-policies"
    assert "Recipient Policies" in dialog.browser.toPlainText()
    assert not dialog.back_action.isEnabled()

    dialog.browser.setSource(dialog.browser.source().resolved("domains.html"))  # a click
    assert dialog.topic == "domains"
    assert "Authoritative" in dialog.browser.toPlainText()
    assert dialog.back_action.isEnabled()

    dialog.back_action.trigger()
    assert dialog.topic == "recipient-policies"
    dialog.contents_action.trigger()
    assert dialog.topic == CONTENTS


def test_help_window_is_reused_per_parent(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    first = HelpDialog.show_topic(parent, "queues")
    second = HelpDialog.show_topic(parent, "connectors")
    assert first is second
    assert second.topic == "connectors"


def test_about_tells_version_data_directory_schema_and_listen_address(
    qtbot: QtBot, store: Store
) -> None:
    console = SimpleNamespace(
        data_dir=store.paths.root,
        store=store,
        smtp=SimpleNamespace(
            listen_text=lambda: "127.0.0.1:2525",
            status_text=lambda: "SMTP: running on 127.0.0.1:2525",
        ),
    )
    facts = AboutFacts.of(console)  # type: ignore[arg-type]
    assert facts.schema_version == SCHEMA_VERSION
    dialog = AboutDialog(facts)
    qtbot.addWidget(dialog)
    assert dialog.rows["Data directory:"] == str(store.paths.root)
    assert dialog.rows["Database schema:"] == f"version {SCHEMA_VERSION}"
    assert dialog.rows["SMTP listens on:"] == "127.0.0.1:2525"
    assert dialog.rows["SMTP service:"] == "running on 127.0.0.1:2525"
    assert f"Version {app.__version__}" in dialog.title_label.text()


# --- the hooks in the main window -------------------------------------------------------------


def test_f1_opens_the_help_page_of_the_current_node(qtbot: QtBot, window: MainWindow) -> None:
    window.select_node("recipients/policies")
    window.tree.setFocus()
    qtbot.keyClick(window.tree, Qt.Key.Key_F1)
    dialog = window.findChild(HelpDialog, "helpDialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.topic == "recipient-policies"

    window.select_node("servers/host/protocols/smtp")
    qtbot.keyClick(window.tree, Qt.Key.Key_F1)
    assert dialog.topic == "smtp"
    assert window.findChildren(HelpDialog) == [dialog], "one help window"


def test_help_menu_offers_topics_and_about(
    window: MainWindow, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [action.text() for action in window.help_menu.actions()]
    assert texts[0] == "&Help Topics" and "&About Postroom" in texts
    shown: list[AboutFacts] = []
    monkeypatch.setattr(AboutDialog, "show_about", classmethod(lambda cls, p, f: shown.append(f)))
    window.about.trigger()
    assert [(f.data_dir, f.schema_version) for f in shown] == [(store.paths.root, SCHEMA_VERSION)]
