"""The Find Recipients rows (Field / Condition / Value) and the filter term each stands for."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

from app.directory.filters import And, Equality, LdapFilter, Not, Presence, Substring
from app.errors import PostroomError
from app.model import ATTRIBUTE_NAMES
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)

FIELD_LABELS: dict[str, str] = {
    "mailNickname": "Alias",
    "givenName": "First name",
    "initials": "Initials",
    "sn": "Last name",
    "displayName": "Display name",
    "company": "Company",
    "department": "Department",
    "title": "Title",
    "physicalDeliveryOfficeName": "Office",
    "l": "City",
    "st": "State/province",
    "c": "Country/region",
    **{f"extensionAttribute{n}": f"Custom attribute {n}" for n in range(1, 16)},
    "objectClass": "Object class",
}


FIELDS: tuple[str, ...] = ("mailNickname", *ATTRIBUTE_NAMES, "objectClass")


STARTS, ENDS, IS, IS_NOT, PRESENT, NOT_PRESENT = (
    "Starts with",
    "Ends with",
    "Is (exactly)",
    "Is not",
    "Present",
    "Not present",
)
CONDITIONS = (STARTS, ENDS, IS, IS_NOT, PRESENT, NOT_PRESENT)


def field_label(attribute: str) -> str:
    canonical = next((f for f in FIELDS if f.lower() == attribute.lower()), attribute)
    return FIELD_LABELS.get(canonical, canonical)


@dataclass(frozen=True)
class Condition:
    """One Field / Condition / Value row and the filter term it stands for."""

    field: str
    condition: str
    value: str
    term: LdapFilter


def make_condition(field: str, condition: str, value: str) -> Condition:
    """A row typed by the admin; refuses an empty value where one is needed."""
    if condition in (PRESENT, NOT_PRESENT):
        term: LdapFilter = Presence(field)
        return Condition(field, condition, "", term if condition == PRESENT else Not(term))
    if not value:
        raise PostroomError(f"Type a value for '{field_label(field)} {condition.lower()}'.")
    if condition == STARTS:
        term = Substring(field, value, (), "")
    elif condition == ENDS:
        term = Substring(field, "", (), value)
    elif condition == IS:
        term = Equality(field, value)
    else:
        term = Not(Equality(field, value))
    return Condition(field, condition, value, term)


def describe(term: LdapFilter) -> Condition | None:
    """The row a filter term reads as, or None when the rows cannot show it."""
    if isinstance(term, Presence):
        return Condition(term.attribute, PRESENT, "", term)
    if isinstance(term, Equality):
        return Condition(term.attribute, IS, term.value, term)
    if isinstance(term, Substring) and not term.middle:
        if term.initial and not term.final:
            return Condition(term.attribute, STARTS, term.initial, term)
        if term.final and not term.initial:
            return Condition(term.attribute, ENDS, term.final, term)
    if isinstance(term, Not):
        inner = term.filter
        if isinstance(inner, Presence):
            return Condition(inner.attribute, NOT_PRESENT, "", term)
        if isinstance(inner, Equality):
            return Condition(inner.attribute, IS_NOT, inner.value, term)
    return None


def terms_of(parsed: LdapFilter | None) -> list[LdapFilter]:
    if parsed is None:
        return []
    if isinstance(parsed, And):
        return list(parsed.filters)
    return [parsed]


def combine(terms: list[LdapFilter]) -> str:
    if not terms:
        return ""
    if len(terms) == 1:
        return str(terms[0])
    return str(And(tuple(terms)))


class ConditionModel(RowTableModel[tuple[int, Condition]]):
    """The Field / Condition / Value rows of the filter being built."""

    COL_FIELD, COL_CONDITION, COL_VALUE = range(3)
    HEADERS = ("Field", "Condition", "Value")

    def key(self, row: tuple[int, Condition]) -> Hashable:
        return (row[0], str(row[1].term))

    def display(self, row: tuple[int, Condition], column: int) -> str:
        condition = row[1]
        if column == self.COL_FIELD:
            return field_label(condition.field)
        if column == self.COL_CONDITION:
            return condition.condition
        return condition.value
