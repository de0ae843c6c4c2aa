"""Spam and sender filtering: rspamd run by Postroom, and the verdicts on inbound mail."""
