"""The outbound queue on disk, ``<data>/queue/``: mail accepted here for delivery elsewhere.

``tmp/`` holds queue files being written; ``active/`` the messages waiting, each an immutable
file (``spool``): written and fsync'ed in ``tmp/``, renamed into ``active/``, never changed
after. What has become of each recipient lives beside it in ``state/<name>`` (``state``),
replaced whole by an atomic rename after fsync. ``control/`` carries an administrator's request
(retry, freeze, delete) to the running queue; ``hops.json`` names the frozen queues and
``status.json`` is the running queue's report of each next hop.

Durability: a message leaves ``active/`` only when every recipient is done, and a recipient is
done only once its fate is in ``state/`` (or the message file is gone). SIGKILL at any point
loses no message. A message can be sent twice only in the window between the remote server's
250 and the rename that records it (or the unlink of a finished message): after a crash there
the recipient is tried again. Postfix has the same window.

Nothing here imports the SMTP service or the sender: both use this package.
"""
