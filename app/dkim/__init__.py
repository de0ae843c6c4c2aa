"""DKIM: each responsible hosted domain's keys (``keys``, ``catalog``) and rspamd's signing
configuration for them (``signing``); the published-record check lives in ``app.dns``."""
