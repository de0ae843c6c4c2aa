"""The E-Mail Addresses lists of the policy and recipient sheets share one primary rule."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from app import policies
from app.model import ProxyAddress
from ui.models.proxy_addresses import ProxyAddressListModel
from ui.models.recipient_attributes import AttributeListModel
from ui.models.rules import RuleListModel


def test_set_as_primary_keeps_one_primary_per_type(qtmodeltester: Any) -> None:
    model = ProxyAddressListModel()
    model.load(
        [
            ProxyAddress("SMTP", "ann@example.com", primary=True),
            ProxyAddress("SMTP", "a.lee@example.com"),
            ProxyAddress("X400", "c=US;a= ;p=Example;o=Mail;s=Lee;", primary=True),
        ]
    )
    qtmodeltester.check(model)
    model.set_primary(1)
    assert [p.primary for p in model.addresses()] == [False, True, True]
    bold = model.index(1, model.COL_ADDRESS).data(Qt.ItemDataRole.FontRole)
    assert bold is not None and bold.bold()
    qtmodeltester.check(model)


def test_a_primary_with_others_of_its_type_is_not_removed_until_another_is_primary() -> None:
    rules = RuleListModel()
    rules.load([policies.make_rule("@example.com", primary=True)])
    rules.add(policies.make_rule("@example.net"))
    assert "Set another address as primary" in rules.remove_refusal(0)
    assert rules.remove_refusal(1) == ""
    rules.set_primary(1)
    assert rules.rule(1).primary and rules.rule(1).enabled, "Set as Primary ticks it"
    assert rules.remove_refusal(0) == ""

    addresses = ProxyAddressListModel()
    addresses.load([ProxyAddress("SMTP", "ann@example.com", primary=True)])
    addresses.add(ProxyAddress("SMTP", "a.lee@example.com"))
    assert "Set another address as primary" in addresses.remove_refusal(0)
    assert addresses.remove_refusal(1) == ""


def test_custom_attributes_are_edited_in_place(qtmodeltester: Any) -> None:
    model = AttributeListModel()
    model.load({"extensionAttribute2": "cost centre 7"})
    edited: list[bool] = []
    model.edited.connect(lambda: edited.append(True))
    value = model.index(0, model.COL_VALUE)
    assert model.flags(value) & Qt.ItemFlag.ItemIsEditable
    assert not model.flags(model.index(0, model.COL_NAME)) & Qt.ItemFlag.ItemIsEditable
    assert model.setData(value, "  Sales  ", Qt.ItemDataRole.EditRole)
    assert not model.setData(value, "Sales", Qt.ItemDataRole.EditRole), "unchanged"
    assert model.values()["extensionAttribute1"] == "Sales"
    assert model.values()["extensionAttribute2"] == "cost centre 7"
    assert edited == [True]
    qtmodeltester.check(model)
