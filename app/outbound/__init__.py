"""Mail going out: ``envelope`` (the message and its RFC 3461 requests), ``sender`` (SMTP to one
next hop with aiosmtplib, on the outbound runner's event loop) and ``dsn`` (RFC 3464
notifications). Nothing is imported here; import from the module that holds a name."""
