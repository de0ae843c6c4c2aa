"""SQL that Dovecot runs: its passdb, userdb and iterate queries on the ``dovecot_users`` view.

Dovecot expands ``%u`` (the login name, lower-cased and SQL-escaped by Dovecot) and ``%s`` (the
service: imap or pop3) before running them; see app/store/schema.py for the view's columns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DovecotQueries:
    password_query: str
    user_query: str
    iterate_query: str


def sql_literal(value: str) -> str:
    """A string literal for a Dovecot query ('%' doubled, as Dovecot expands variables)."""
    return "'" + value.replace("'", "''").replace("%", "%%") + "'"


def dovecot_queries(mailboxes: str) -> DovecotQueries:
    """The queries, for Maildirs under the folder ``mailboxes`` (ending in '/')."""
    folder = sql_literal(mailboxes)
    turned_off = "('%s' = 'imap' AND imap = 0) OR ('%s' = 'pop3' AND pop3 = 0)"
    return DovecotQueries(
        password_query=(
            "SELECT user, password,"
            f" CASE WHEN {turned_off} THEN 'Y' END AS nologin,"
            f" CASE WHEN {turned_off} THEN upper('%s') || ' is turned off for this user.' END"
            " AS reason"
            " FROM dovecot_users WHERE login = '%u' AND password IS NOT NULL"
        ),
        user_query=(
            f"SELECT {folder} || user AS home, 'maildir:' || {folder} || user AS mail,"
            " quota_rule FROM dovecot_users WHERE login = '%u'"
        ),
        iterate_query="SELECT DISTINCT user FROM dovecot_users",
    )
