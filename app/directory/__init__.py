"""The directory: recipients (users, contacts, groups) with their addresses, address templates and
validation, LDAP filters, and password hashes."""
