"""Qt item models the console's lists and dialogs share (one subclass per list)."""
