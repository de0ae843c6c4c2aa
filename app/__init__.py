"""Postroom's engine: directory, recipient policies, Recipient Update Service, SMTP, DNS (no Qt)."""

__version__ = "0.1.0"
