"""The Recipient Update Service (RUS): stamps recipients' addresses from recipient policies.

- ``RecipientUpdateService`` (``service``): the background thread the console and
  ``postroom serve`` run, with requests, cancel, progress listeners and the schedule.
- ``run`` (``runner``): one Update Now or Rebuild on the calling thread (``postroom rus``); per
  object it applies ``stamping`` (the rules), ``collisions`` (free addresses) and ``slices``
  (the writes), with a ``helper`` process preparing big runs ahead.
- ``read_status``, ``last_run`` (``status``) and ``explain`` (``explain``): what any process
  can read back.
- ``Schedule`` (``schedule``): when the service runs by itself.
"""

from app.rus.explain import AddressReason, Explanation, explain
from app.rus.runner import Progress, run
from app.rus.schedule import Schedule, load_schedule, make_schedule, save_schedule
from app.rus.service import RecipientUpdateService, RusEvent, ServiceState
from app.rus.status import RusStatus, last_run, read_status, run_errors
from app.store.rus import DecisionRecord, Provenance, RunKind, RunRecord

__all__ = [
    "AddressReason",
    "DecisionRecord",
    "Explanation",
    "Progress",
    "Provenance",
    "RecipientUpdateService",
    "RunKind",
    "RunRecord",
    "RusEvent",
    "RusStatus",
    "Schedule",
    "ServiceState",
    "explain",
    "last_run",
    "load_schedule",
    "make_schedule",
    "read_status",
    "run",
    "run_errors",
    "save_schedule",
]
