"""The database schema as forward migrations; ``PRAGMA user_version`` holds the version reached."""

from __future__ import annotations

# Each entry migrates from version i to i + 1. Never edit a released entry; append a new one.
MIGRATIONS: list[str] = [
    # 1: organisation, directory, recipient policies, settings, tracking log, leases.
    """
    CREATE TABLE counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('change', 0), ('usn', 0);

    CREATE TABLE organization (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        name    TEXT NOT NULL,
        created TEXT NOT NULL
    );

    CREATE TABLE policies (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
        is_default    INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
        priority      INTEGER UNIQUE,
        filter        TEXT NOT NULL DEFAULT '',
        note          TEXT NOT NULL DEFAULT '',
        created       TEXT NOT NULL,
        modified      TEXT NOT NULL,
        apply_pending INTEGER NOT NULL DEFAULT 0 CHECK (apply_pending IN (0, 1)),
        applied_usn   INTEGER,
        CHECK ((is_default = 1) = (priority IS NULL))
    );
    CREATE UNIQUE INDEX policies_one_default ON policies (is_default) WHERE is_default = 1;

    CREATE TABLE address_rules (
        id          INTEGER PRIMARY KEY,
        policy_id   INTEGER NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        type        TEXT NOT NULL COLLATE NOCASE,
        address     TEXT NOT NULL COLLATE NOCASE,
        enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        is_primary  INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
        responsible INTEGER NOT NULL DEFAULT 1 CHECK (responsible IN (0, 1)),
        UNIQUE (policy_id, type, address)
    );
    CREATE UNIQUE INDEX address_rules_one_primary
        ON address_rules (policy_id, type) WHERE is_primary = 1;

    CREATE TABLE recipients (
        id            INTEGER PRIMARY KEY,
        alias         TEXT NOT NULL UNIQUE COLLATE NOCASE,
        object_class  TEXT NOT NULL CHECK (object_class IN ('user', 'contact', 'group')),
        attributes    TEXT NOT NULL DEFAULT '{}',
        display_name  TEXT GENERATED ALWAYS AS (json_extract(attributes, '$.displayName')) VIRTUAL,
        target        TEXT,
        password_hash TEXT,
        auto_update   INTEGER NOT NULL DEFAULT 1 CHECK (auto_update IN (0, 1)),
        usn           INTEGER NOT NULL,
        stamped_usn   INTEGER,
        created       TEXT NOT NULL,
        modified      TEXT NOT NULL
    );
    CREATE INDEX recipients_usn ON recipients (usn);

    CREATE TABLE proxy_addresses (
        id           INTEGER PRIMARY KEY,
        recipient_id INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
        type         TEXT NOT NULL COLLATE NOCASE,
        address      TEXT NOT NULL COLLATE NOCASE,
        is_primary   INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
        UNIQUE (type, address)
    );
    CREATE INDEX proxy_addresses_recipient ON proxy_addresses (recipient_id);
    CREATE UNIQUE INDEX proxy_addresses_one_primary
        ON proxy_addresses (recipient_id, type) WHERE is_primary = 1;

    CREATE TABLE group_members (
        group_id  INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
        member_id INTEGER NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, member_id),
        CHECK (group_id <> member_id)
    );
    CREATE INDEX group_members_member ON group_members (member_id);

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );

    CREATE TABLE message_tracking (
        id         INTEGER PRIMARY KEY,
        time       TEXT NOT NULL,
        event      TEXT NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        sender     TEXT NOT NULL DEFAULT '',
        recipients TEXT NOT NULL DEFAULT '',
        client     TEXT NOT NULL DEFAULT '',
        code       INTEGER,
        reason     TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX message_tracking_time ON message_tracking (time);

    CREATE TABLE leases (
        name    TEXT PRIMARY KEY,
        owner   TEXT NOT NULL,
        expires REAL NOT NULL
    );
    """,
    # 2: Recipient Update Service: high-water mark, runs (status, progress), latest decisions.
    """
    CREATE TABLE rus_state (
        id  INTEGER PRIMARY KEY CHECK (id = 1),
        hwm INTEGER NOT NULL
    );
    INSERT INTO rus_state (id, hwm) VALUES (1, 0);

    CREATE TABLE rus_runs (
        id       INTEGER PRIMARY KEY,
        kind     TEXT NOT NULL CHECK (kind IN ('update', 'rebuild')),
        owner    TEXT NOT NULL,
        started  TEXT NOT NULL,
        finished TEXT,
        duration REAL,
        outcome  TEXT NOT NULL DEFAULT 'running'
                 CHECK (outcome IN ('running', 'completed', 'cancelled', 'failed')),
        done     INTEGER NOT NULL DEFAULT 0,
        total    INTEGER NOT NULL DEFAULT 0,
        examined INTEGER NOT NULL DEFAULT 0,
        changed  INTEGER NOT NULL DEFAULT 0,
        errors   INTEGER NOT NULL DEFAULT 0,
        message  TEXT NOT NULL DEFAULT ''
    );

    -- Only the latest decision per recipient. ``addresses`` says which policy, rule and
    -- collision suffix made each address the RUS stamped (kept across later stamps): one entry
    -- per address, separated by U+001E, of fields separated by U+001F (see app/store/rus.py).
    CREATE TABLE rus_decisions (
        recipient_id INTEGER PRIMARY KEY REFERENCES recipients (id) ON DELETE CASCADE,
        run_id       INTEGER NOT NULL,
        decision     TEXT NOT NULL CHECK (decision IN ('stamped', 'kept', 'skipped', 'error')),
        policy       TEXT NOT NULL DEFAULT '',
        reason       TEXT NOT NULL DEFAULT '',
        stamp_run_id INTEGER,
        addresses    TEXT NOT NULL DEFAULT ''
    );
    """,
    # 3: SMTP connectors: address spaces (cost 1-100), relay, DNS or smart hosts, security.
    """
    CREATE TABLE connectors (
        id        INTEGER PRIMARY KEY,
        name      TEXT NOT NULL UNIQUE COLLATE NOCASE,
        relay     INTEGER NOT NULL DEFAULT 0 CHECK (relay IN (0, 1)),
        use_dns   INTEGER NOT NULL DEFAULT 1 CHECK (use_dns IN (0, 1)),
        tls       TEXT NOT NULL DEFAULT 'opportunistic'
                  CHECK (tls IN ('required', 'opportunistic')),
        -- Basic authentication: both set, or both empty (anonymous). The database is 0600.
        auth_user TEXT NOT NULL DEFAULT '',
        password  TEXT NOT NULL DEFAULT '',
        note      TEXT NOT NULL DEFAULT '',
        created   TEXT NOT NULL,
        modified  TEXT NOT NULL,
        CHECK ((auth_user = '') = (password = ''))
    );

    CREATE TABLE connector_address_spaces (
        connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
        position     INTEGER NOT NULL,
        type         TEXT NOT NULL DEFAULT 'SMTP' CHECK (type = 'SMTP'),
        pattern      TEXT NOT NULL COLLATE NOCASE,
        cost         INTEGER NOT NULL CHECK (cost BETWEEN 1 AND 100),
        PRIMARY KEY (connector_id, position),
        UNIQUE (connector_id, type, pattern)
    );

    CREATE TABLE connector_smart_hosts (
        connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
        position     INTEGER NOT NULL,
        host         TEXT NOT NULL COLLATE NOCASE,
        port         INTEGER CHECK (port BETWEEN 1 AND 65535),
        PRIMARY KEY (connector_id, position)
    );
    """,
    # 4: IMAP4 / POP3 per user and mailbox limits (issue 13), and the view Dovecot reads.
    """
    ALTER TABLE recipients ADD COLUMN imap_enabled INTEGER NOT NULL DEFAULT 1
        CHECK (imap_enabled IN (0, 1));
    ALTER TABLE recipients ADD COLUMN pop3_enabled INTEGER NOT NULL DEFAULT 1
        CHECK (pop3_enabled IN (0, 1));
    -- KiB; NULL: the Mailbox Store's default (settings mailbox_*_default); 0: no limit.
    ALTER TABLE recipients ADD COLUMN quota_warn INTEGER CHECK (quota_warn >= 0);
    ALTER TABLE recipients ADD COLUMN quota_prohibit INTEGER CHECK (quota_prohibit >= 0);

    -- dovecot_users: what Dovecot's passdb and userdb read (app/dovecot writes the queries).
    -- A stable interface: columns are only ever added. One row per name a user logs in with:
    -- each of the user's SMTP addresses and the alias (compare with = , which is
    -- case-insensitive here; Dovecot passes the name lower-cased).
    --   login     the name typed at LOGIN / USER
    --   user      the mailbox's name: the alias, lower-case; its Maildir is <data>/mailboxes/<user>
    --   password  {ARGON2ID}$argon2id$...; NULL when the user has no password Dovecot can check
    --             (none set, or an older scrypt hash not yet re-hashed by an SMTP AUTH login)
    --   imap, pop3         1 when the user may use the protocol, else 0
    --   quota_warn_kib, quota_kib  the effective limits in KiB (0: none)
    --   quota_rule         Dovecot's quota_rule for quota_kib
    CREATE VIEW dovecot_users AS
    WITH users AS (
        SELECT r.id, lower(r.alias) AS user,
               CASE WHEN r.password_hash LIKE '$argon2id$%'
                    THEN '{ARGON2ID}' || r.password_hash END AS password,
               r.imap_enabled AS imap, r.pop3_enabled AS pop3,
               coalesce(r.quota_warn, (SELECT CAST(value AS INTEGER) FROM settings
                                       WHERE key = 'mailbox_warn_default'), 0) AS quota_warn_kib,
               coalesce(r.quota_prohibit, (SELECT CAST(value AS INTEGER) FROM settings
                                           WHERE key = 'mailbox_prohibit_default'), 0) AS quota_kib
        FROM recipients r WHERE r.object_class = 'user'
    ),
    logins AS (
        SELECT p.address AS login, p.recipient_id AS id FROM proxy_addresses p
        WHERE p.type = 'SMTP'
        UNION ALL
        SELECT alias AS login, id FROM recipients WHERE object_class = 'user'
    )
    SELECT l.login AS login, u.user AS user, u.password AS password, u.imap AS imap,
           u.pop3 AS pop3, u.quota_warn_kib AS quota_warn_kib, u.quota_kib AS quota_kib,
           CASE WHEN u.quota_kib > 0 THEN '*:storage=' || u.quota_kib || 'K'
                ELSE '*:ignore' END AS quota_rule
    FROM logins l JOIN users u ON u.id = l.id;
    """,
]
