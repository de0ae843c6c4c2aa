"""The Mailbox Store: Maildir folders, durable delivery into them, and reading them back."""
