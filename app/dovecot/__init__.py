"""IMAP4 and POP3 through Dovecot, configured and run by Postroom (issue 13).

Postroom writes a private configuration under ``<data>/dovecot/`` (``config.py``) and runs
``dovecot -F -c <data>/dovecot/dovecot.conf`` as its own child (``service.py``): its own base_dir
(run/, or a short folder under the temporary directory when the data path is too long for a
Unix socket's name), state/, and the log ``<data>/dovecot/dovecot.log``. The system's Dovecot
(/etc/dovecot) is never read or touched.

Authentication reads ``postroom.db`` itself through Dovecot's SQLite driver: the passdb and
userdb queries select from the ``dovecot_users`` view (app/store/schema.py), so nothing is
copied into files that could drift; a password change, a disabled protocol or a deleted user
takes effect at the next login. A user logs in with any SMTP address or the alias (Dovecot
lower-cases the name); Dovecot then knows the user by the alias, and serves the Maildir
``<data>/mailboxes/<alias>/``. A disabled protocol is refused with its own reason only after the
password matched; a wrong password, an unknown user and a user without a password (or with an
older scrypt hash not yet re-hashed by an SMTP AUTH login) get the same reply.

Users: when Postroom runs as root, Dovecot's mail processes run as the system user ``mail`` and
the Maildirs are handed to that user (app/mailstore/ownership.py), because Dovecot never serves
mail as uid 0; its authentication worker stays root and so can open the private database, and
its login processes run as Debian's ``dovenull``, its internal ones as ``dovecot``. When Postroom
runs as an unprivileged user (the systemd unit's), every Dovecot process runs as that user.
"""
