"""The one exception type for requests a user can get wrong; its message is shown as is."""


class PostroomError(Exception):
    """A refused request. ``str(error)`` says what is wrong and what to do, fit to show a user."""


class NotFoundError(PostroomError):
    """The named policy, recipient, rule or address does not exist."""


class ConflictError(PostroomError):
    """The request clashes with what is stored (a duplicate name or address, a locked object)."""
