"""Every model of the console passes pytest-qt's model tester, filled with real data."""

from __future__ import annotations

import smtplib
from typing import Any

from PySide6.QtCore import QModelIndex
from pytestqt.qtbot import QtBot

from app import policies
from app.directory import recipients
from app.rus.schedule import parse_week
from app.settings import parse_host_port
from app.store import Store
from ui.dialogs.filter_builder import FindRecipientsDialog
from ui.main_window import MainWindow
from ui.models.policies import PolicyListModel
from ui.models.recipients import RecipientMatchModel
from ui.models.rules import RuleListModel
from ui.models.schedule import ScheduleModel


def views_model(window: MainWindow, key: str) -> Any:
    window.select_node(key)
    assert window.current is not None
    return window.current.model


def test_tree_and_list_models_of_the_window(
    qtmodeltester: Any, window: MainWindow, store: Store
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.create_policy(store, "Staff")
    qtmodeltester.check(window.tree_model)
    for key in (
        "organization",
        "recipients",
        "recipients/policies",
        "recipients/update-services",
        "servers/host/protocols/smtp/default",
        "servers/host/protocols/smtp/default/sessions",
    ):
        model = views_model(window, key)
        qtmodeltester.check(model)
        qtmodeltester.check(window.proxy)


def test_policy_list_model_while_it_changes(qtmodeltester: Any, store: Store, qtbot: QtBot) -> None:
    model = PolicyListModel(rename=lambda policy, name: True)
    model.set_rows(policies.list_policies(store))
    qtmodeltester.check(model)
    policies.create_policy(store, "Sales")
    policies.create_policy(store, "Staff")
    model.set_rows(policies.list_policies(store))  # rows inserted
    policies.move_policy(store, "Staff", "up")
    model.set_rows(policies.list_policies(store))  # rows changed
    policies.delete_policy(store, "Sales")
    model.set_rows(policies.list_policies(store))  # rows removed
    qtmodeltester.check(model)
    # Rows are updated in place and new ones appended; the view's proxy sorts them.
    assert sorted(policy.name for policy in model.rows()) == ["Default Policy", "Staff"]


def test_rule_model(qtmodeltester: Any, store: Store) -> None:
    policies.create_policy(store, "Sales")
    policies.add_rule(store, "Sales", "@sales.example.com")
    policies.add_rule(store, "Sales", "%g.%s@sales.example.com", enabled=False)
    model = RuleListModel()
    model.load(policies.get_policy(store, "Sales").rules)
    qtmodeltester.check(model)
    model.add(policies.make_rule("@example.net"))
    model.set_primary(2)
    model.remove(0)
    qtmodeltester.check(model)


def test_recipient_match_and_condition_models(
    qtmodeltester: Any, store: Store, qtbot: QtBot
) -> None:
    for alias, department in (("ann", "Sales"), ("bob", "Sales"), ("cy", "Support")):
        recipients.create_recipient(store, alias, attributes={"department": department})
    matches = RecipientMatchModel()
    matches.set_rows(recipients.list_recipients(store))
    qtmodeltester.check(matches)

    finder = FindRecipientsDialog(None, store, "(&(department=Sales)(sn=*)(!(title=Boss)))")
    qtbot.addWidget(finder)
    assert finder.conditions.rowCount() == 3
    qtmodeltester.check(finder.conditions)
    finder.find_now()
    qtbot.waitUntil(lambda: not finder.searching)
    qtmodeltester.check(finder.matches)
    finder.reject()


def test_schedule_model(qtmodeltester: Any) -> None:
    model = ScheduleModel(parse_week("mon-fri 8-17; sat 10"))
    qtmodeltester.check(model)
    model.set_cells([model.index(6, 3), QModelIndex()], True)
    assert model.week()[6][3]


def test_session_model_with_a_client_connected(
    qtmodeltester: Any, qtbot: QtBot, live_window: MainWindow
) -> None:
    model = views_model(live_window, "servers/host/protocols/smtp/default/sessions")
    host, port = parse_host_port(live_window.console.smtp.addresses[0])
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.ehlo("client.test")
        qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5000)
        qtmodeltester.check(model)
