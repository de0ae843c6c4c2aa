"""The console's dialogs and property sheets; each has one classmethod entry point."""
