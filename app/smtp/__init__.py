"""The embedded SMTP service: accepts mail for the hosted addresses and stores it durably.

Import from the module that holds a name: ``service`` (``SmtpService``, start/stop/pause around
aiosmtpd's Controller), ``events`` (``SmtpEvent``, the message tracking log), ``protocol``
(aiosmtpd's protocol tightened, and ``Connection``), ``handler`` (every reply Postroom decides),
``routing`` (who gets a recipient's mail), ``delivery`` and ``writer`` (the disk writer process,
which writes Maildir copies and the queue files of ``app.queue``), ``tls`` and ``lock``.
Nothing is imported here, so that the disk writer process (``app.smtp.writer``) starts light.
"""
