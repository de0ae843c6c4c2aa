"""The directory: users, contacts and groups, with their proxy addresses."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.directory import addressing
from app.directory.passwords import hash_password, needs_rehash, verify_password
from app.errors import ConflictError, NotFoundError, PostroomError
from app.mailstore import maildir
from app.model import (
    ATTRIBUTE_NAMES,
    RECIPIENT_KINDS,
    SMTP,
    ProxyAddress,
    Recipient,
    RecipientKind,
    canonical_attribute,
    now,
)
from app.policies.effective import PolicySet
from app.store import Connection, ConstraintError, Store
from app.store import directory as rows
from app.store import policies as policy_rows
from app.store.database import next_usn

log = logging.getLogger(__name__)

# Aliases name Maildir folders too, so they are kept to characters safe in a file name.
_ALIAS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._'-]{0,62}[A-Za-z0-9_'-])?")
MAX_ATTRIBUTE_LENGTH = 256
KEEP = object()
MAX_MAILBOX_LIMIT_KIB = 2**32  # 4 TiB


def check_alias(alias: str) -> str:
    alias = alias.strip()
    if not alias:
        raise PostroomError("The alias is empty. Type an alias such as jsmith.")
    if not _ALIAS.fullmatch(alias) or ".." in alias:
        raise PostroomError(
            f"'{alias}' is not a valid alias. Use 1 to 64 letters, digits, '.', '-', '_' or "
            "apostrophes, starting with a letter or digit and not ending with a dot."
        )
    return alias


def check_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """Attributes with canonical names; '' removes one. Unknown names are refused."""
    checked: dict[str, str] = {}
    for name, value in attributes.items():
        canonical = canonical_attribute(name)
        if canonical is None:
            raise PostroomError(
                f"'{name}' is not a recipient attribute. Use one of: {', '.join(ATTRIBUTE_NAMES)}."
            )
        value = value.strip()
        if len(value) > MAX_ATTRIBUTE_LENGTH or not value.isprintable():
            raise PostroomError(
                f"The value of {canonical} must be printable text of at most "
                f"{MAX_ATTRIBUTE_LENGTH} characters."
            )
        checked[canonical] = value
    return checked


def default_display_name(attributes: Mapping[str, str], alias: str) -> str:
    """ "Given I. Surname" as Active Directory Users and Computers builds it, else the alias."""
    initials = attributes.get("initials", "")
    parts = [
        attributes.get("givenName", ""),
        f"{initials}." if initials and not initials.endswith(".") else initials,
        attributes.get("sn", ""),
    ]
    return " ".join(part for part in parts if part) or alias


# -- reading ------------------------------------------------------------------------------------


def list_recipients(store: Store) -> list[Recipient]:
    """Every recipient, oldest change first."""
    with store.read() as conn:
        return rows.load_recipients(conn)


def get_recipient(store: Store, alias: str) -> Recipient:
    with store.read() as conn:
        return _get(conn, alias)


def _get(conn: Connection, alias: str) -> Recipient:
    recipient = rows.find_recipient(conn, alias.strip())
    if recipient is None:
        raise NotFoundError(
            f"There is no recipient with the alias '{alias}'. "
            "See the aliases with: postroom recipient list"
        )
    return recipient


def member_of(store: Store, alias: str) -> list[str]:
    """The groups a recipient is a direct member of."""
    with store.read() as conn:
        return rows.member_of(conn, int(_get(conn, alias).id or 0))


# -- writing ------------------------------------------------------------------------------------


def create_recipient(
    store: Store,
    alias: str,
    kind: RecipientKind = "user",
    *,
    attributes: Mapping[str, str] | None = None,
    target: str | None = None,
    members: Sequence[str] = (),
    password: str | None = None,
    auto_update: bool = True,
) -> Recipient:
    """Create a user (with its Maildir), a contact (with its target) or a group."""
    alias = check_alias(alias)
    if kind not in RECIPIENT_KINDS:
        raise PostroomError(f"'{kind}' is not a recipient type. Use user, contact or group.")
    attrs = {k: v for k, v in check_attributes(attributes or {}).items() if v}
    attrs.setdefault("displayName", default_display_name(attrs, alias))
    target = _check_target(kind, target)
    if members and kind != "group":
        raise PostroomError("Only a group has members. Use --type group.")
    if password is not None and kind != "user":
        raise PostroomError("Only a user has a password (for SMTP authentication).")
    password_hash = hash_password(password) if password is not None else None
    with store.write() as conn:
        stamp = now()
        recipient = Recipient(
            alias=alias,
            kind=kind,
            attributes=attrs,
            auto_update=auto_update,
            target=target,
            created=stamp,
            modified=stamp,
        )
        try:
            recipient_id = rows.insert_recipient(conn, recipient, next_usn(conn), password_hash)
        except ConstraintError as error:
            raise ConflictError(
                f"The alias '{alias}' is already used. Choose another alias."
            ) from error
        if members:
            rows.set_members(conn, recipient_id, _member_ids(conn, alias, members))
        created = _get(conn, alias)
    if kind == "user":
        maildir.ensure(store.paths.mailbox(alias))
    log.info("created %s %s", kind, alias)
    return created


def _check_target(kind: str, target: str | None) -> str | None:
    if kind == "contact":
        if not target:
            raise PostroomError(
                "A contact needs a target address to forward to, e.g. --target ann@partner.example."
            )
        return addressing.normalize_smtp_address(target)
    if target:
        raise PostroomError("Only a contact has a target address. Use --type contact.")
    return None


def _member_ids(conn: Connection, group: str, members: Iterable[str]) -> list[int]:
    ids: list[int] = []
    for member in members:
        recipient = _get(conn, member)
        if recipient.alias.lower() == group.lower():
            raise PostroomError(f"The group '{group}' cannot be a member of itself.")
        if recipient.id not in ids:
            ids.append(int(recipient.id or 0))
    return ids


def edit_recipient(
    store: Store,
    alias: str,
    *,
    new_alias: str | None = None,
    attributes: Mapping[str, str] | None = None,
    target: str | None = None,
    members: Sequence[str] | None = None,
    password: str | None | object = KEEP,
    auto_update: bool | None = None,
    imap_enabled: bool | None = None,
    pop3_enabled: bool | None = None,
    quota_warn: int | None | object = KEEP,
    quota_prohibit: int | None | object = KEEP,
) -> Recipient:
    """Change a recipient. ``attributes`` are merged ('' removes one); ``password=None`` clears it.

    ``imap_enabled`` / ``pop3_enabled`` (None keeps them) and the mailbox limits in KiB
    (``KEEP`` keeps one, None takes the Mailbox Store's default, 0 is no limit) are a user's.
    The change takes a new change number, so the Recipient Update Service looks at it again.
    """
    with store.write() as conn:
        old = _get(conn, alias)
        attrs = dict(old.attributes)
        for name, value in check_attributes(attributes or {}).items():
            if value:
                attrs[name] = value
            else:
                attrs.pop(name, None)
        renamed = check_alias(new_alias) if new_alias is not None else old.alias
        new = dataclasses.replace(
            old,
            alias=renamed,
            attributes=attrs,
            target=_check_target(old.kind, target) if target is not None else old.target,
            auto_update=old.auto_update if auto_update is None else auto_update,
            modified=now(),
        )
        new = _with_mail_access(new, imap_enabled, pop3_enabled, quota_warn, quota_prohibit)
        if members is not None:
            if old.kind != "group":
                raise PostroomError("Only a group has members.")
            rows.set_members(conn, int(old.id or 0), _member_ids(conn, renamed, members))
        if password is not KEEP:
            if old.kind != "user":
                raise PostroomError("Only a user has a password (for SMTP authentication).")
            hashed = hash_password(password) if isinstance(password, str) else None
            rows.set_password_hash(conn, int(old.id or 0), hashed)
        try:
            rows.update_recipient(conn, new, next_usn(conn))
        except ConstraintError as error:
            raise ConflictError(
                f"The alias '{renamed}' is already used. Choose another alias."
            ) from error
        if old.kind == "user" and renamed != old.alias:
            maildir.rename(store.paths.mailbox(old.alias), store.paths.mailbox(renamed))
        return _get(conn, renamed)


def check_mailbox_limits(quota_warn: int | None, quota_prohibit: int | None) -> None:
    """Refuse a limit that is not a whole number of KiB from 0 (none) to 4 TiB, or a warning
    above the prohibit limit (None, the store's default, is checked where defaults are known)."""
    for name, value in (("warning", quota_warn), ("prohibit", quota_prohibit)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise PostroomError(f"The {name} limit '{value}' is not a whole number of KiB.")
        if not 0 <= value <= MAX_MAILBOX_LIMIT_KIB:
            raise PostroomError(
                f"The {name} limit {value} KiB is out of range: use 0 (no limit) to "
                f"{MAX_MAILBOX_LIMIT_KIB} KiB (4 TiB)."
            )
    if quota_warn and quota_prohibit and quota_warn > quota_prohibit:
        raise PostroomError(
            f"The warning limit ({quota_warn} KiB) is above the prohibit limit "
            f"({quota_prohibit} KiB): lower the warning or raise the prohibit limit."
        )


def _with_mail_access(
    recipient: Recipient,
    imap_enabled: bool | None,
    pop3_enabled: bool | None,
    quota_warn: int | None | object,
    quota_prohibit: int | None | object,
) -> Recipient:
    changes: dict[str, object] = {}
    if imap_enabled is not None:
        changes["imap_enabled"] = bool(imap_enabled)
    if pop3_enabled is not None:
        changes["pop3_enabled"] = bool(pop3_enabled)
    if quota_warn is not KEEP:
        changes["quota_warn"] = quota_warn
    if quota_prohibit is not KEEP:
        changes["quota_prohibit"] = quota_prohibit
    if not changes:
        return recipient
    if recipient.kind != "user":
        raise PostroomError(
            "Only a user has a mailbox: protocols and mailbox limits are a user's settings."
        )
    updated = dataclasses.replace(recipient, **changes)  # type: ignore[arg-type]
    check_mailbox_limits(updated.quota_warn, updated.quota_prohibit)
    return updated


def set_password(store: Store, alias: str, password: str | None) -> Recipient:
    """Set (or with None clear) a user's password; IMAP, POP3 and SMTP AUTH take it at once."""
    return edit_recipient(store, alias, password=password)


def rehash_password(store: Store, alias: str, password: str, stored: str) -> bool:
    """After ``password`` verified against ``stored``: replace an older hash (scrypt) with an
    ARGON2ID one, which Dovecot verifies too. False if nothing needed doing or the hash changed
    meanwhile (a password change wins)."""
    if not needs_rehash(stored) or not verify_password(password, stored):
        return False
    fresh = hash_password(password)
    with store.write() as conn:
        replaced = rows.replace_password_hash(conn, alias, stored, fresh)
    if replaced:
        log.info("re-hashed the password of %s as ARGON2ID", alias)
    return replaced


def delete_recipient(store: Store, alias: str) -> None:
    """Delete a recipient. A user's Maildir stays on disk (mail is never thrown away)."""
    with store.write() as conn:
        recipient = _get(conn, alias)
        rows.delete_recipient(conn, int(recipient.id or 0))
    log.info("deleted %s %s", recipient.kind, recipient.alias)


def check_address(address: str, type_: str = SMTP) -> ProxyAddress:
    """A validated proxy address (SMTP addresses are normalised; other types kept as text)."""
    type_ = type_.strip()
    if type_.upper() == SMTP:
        return ProxyAddress(SMTP, addressing.normalize_smtp_address(address))
    if not type_ or ":" in type_ or not type_.isprintable():
        raise PostroomError(f"'{type_}' is not an address type. Use SMTP or a custom type name.")
    if not address.strip() or not address.isprintable():
        raise PostroomError(f"The {type_} address is empty or has control characters.")
    return ProxyAddress(type_, address.strip())


def set_addresses(store: Store, alias: str, addresses: Sequence[ProxyAddress]) -> Recipient:
    """Replace a recipient's proxy addresses, as the E-mail Addresses tab does."""
    checked = [
        dataclasses.replace(check_address(a.address, a.type), primary=a.primary) for a in addresses
    ]
    _check_primaries(checked)
    with store.write() as conn:
        recipient = _get(conn, alias)
        seen: set[tuple[str, str]] = set()
        for proxy in checked:
            key = (proxy.type.upper(), proxy.address.lower())
            if key in seen:
                raise ConflictError(f"{proxy.address} is listed twice.")
            seen.add(key)
            owner = rows.address_owner(conn, proxy.type, proxy.address)
            if owner is not None and owner.lower() != recipient.alias.lower():
                raise ConflictError(
                    f"The address {proxy.address} already belongs to '{owner}'. "
                    "Proxy addresses must be unique in the organization."
                )
        rows.replace_addresses(conn, int(recipient.id or 0), checked)
        rows.update_recipient(conn, dataclasses.replace(recipient, modified=now()), next_usn(conn))
        return _get(conn, recipient.alias)


def _check_primaries(addresses: Sequence[ProxyAddress]) -> None:
    types = {a.type.upper() for a in addresses}
    for type_ in types:
        primaries = [a for a in addresses if a.type.upper() == type_ and a.primary]
        if len(primaries) > 1:
            raise PostroomError(f"Only one {type_} address can be primary.")
        if not primaries:
            raise PostroomError(
                f"One {type_} address must be primary. Select one and choose Set as Primary."
            )


def add_address(
    store: Store, alias: str, address: str, type_: str = SMTP, primary: bool = False
) -> Recipient:
    """Add a proxy address by hand; the first of its type becomes primary."""
    recipient = get_recipient(store, alias)
    new = check_address(address, type_)
    first = all(a.type.upper() != new.type.upper() for a in recipient.addresses)
    addresses = list(recipient.addresses)
    if primary or first:
        addresses = [
            dataclasses.replace(a, primary=False) if a.type.upper() == new.type.upper() else a
            for a in addresses
        ]
    addresses.append(dataclasses.replace(new, primary=primary or first))
    return set_addresses(store, alias, addresses)


def _find_address(recipient: Recipient, address: str) -> int:
    wanted = address.strip().lower()
    for index, proxy in enumerate(recipient.addresses):
        if proxy.address.lower() == wanted:
            return index
    try:
        normal = addressing.normalize_smtp_address(address).lower()
    except PostroomError:
        normal = wanted
    for index, proxy in enumerate(recipient.addresses):
        if proxy.address.lower() == normal:
            return index
    raise NotFoundError(
        f"'{recipient.alias}' has no address {address}. "
        f"See its addresses with: postroom recipient show {recipient.alias}"
    )


def remove_address(store: Store, alias: str, address: str) -> Recipient:
    """Remove a proxy address (a primary only when it is the last of its type)."""
    recipient = get_recipient(store, alias)
    index = _find_address(recipient, address)
    removed = recipient.addresses[index]
    rest = recipient.addresses[:index] + recipient.addresses[index + 1 :]
    if removed.primary and any(a.type.upper() == removed.type.upper() for a in rest):
        raise PostroomError(
            f"{removed.address} is the primary {removed.type} address. "
            "Set another address as primary before removing it."
        )
    return set_addresses(store, alias, rest)


def set_primary_address(store: Store, alias: str, address: str) -> Recipient:
    """Make an existing proxy address the primary of its type; the old primary stays secondary."""
    recipient = get_recipient(store, alias)
    index = _find_address(recipient, address)
    return set_addresses(store, alias, with_primary_address(recipient.addresses, index))


def with_primary_address(addresses: Sequence[ProxyAddress], index: int) -> list[ProxyAddress]:
    """The addresses with ``addresses[index]`` the primary of its type; the old primary of that
    type stays, as a secondary address, and other types keep theirs."""
    chosen = addresses[index]
    return [
        dataclasses.replace(a, primary=(i == index)) if a.type.upper() == chosen.type.upper() else a
        for i, a in enumerate(addresses)
    ]


def address_owner(store: Store, address: str, type_: str = SMTP) -> str | None:
    """The alias of the recipient that has this proxy address (case-insensitive), if any."""
    proxy = check_address(address, type_)
    with store.read() as conn:
        return rows.address_owner(conn, proxy.type, proxy.address)


# -- a property sheet's changes, all or nothing -------------------------------------------------


def save_recipient(
    store: Store,
    alias: str,
    *,
    new_alias: str | None = None,
    attributes: Mapping[str, str] | None = None,
    target: str | None = None,
    members: Sequence[str] | None = None,
    auto_update: bool | None = None,
    addresses: Sequence[ProxyAddress] | None = None,
    member_of: Sequence[str] | None = None,
    imap_enabled: bool | None = None,
    pop3_enabled: bool | None = None,
    quota_warn: int | None | object = KEEP,
    quota_prohibit: int | None | object = KEEP,
    password: str | None | object = KEEP,
) -> Recipient:
    """Store what a recipient's property sheet changed in one transaction: all of it, or (when
    anything is refused) none of it. ``None`` leaves a part as it is; ``attributes`` are merged
    as in ``edit_recipient``; ``member_of`` is the complete list of groups it belongs to; the
    protocols, limits and password are as in ``edit_recipient``."""
    with store.write() as conn:
        recipient = _get(conn, alias)
        if member_of is not None:
            _set_member_of(conn, recipient, member_of)
        if addresses is not None:
            set_addresses(store, recipient.alias, addresses)
        edit_recipient(
            store,
            recipient.alias,
            new_alias=new_alias,
            attributes=attributes,
            target=target,
            members=members,
            auto_update=auto_update,
            imap_enabled=imap_enabled,
            pop3_enabled=pop3_enabled,
            quota_warn=quota_warn,
            quota_prohibit=quota_prohibit,
            password=password,
        )
        return _get(conn, new_alias.strip() if new_alias is not None else recipient.alias)


def _set_member_of(conn: Connection, recipient: Recipient, groups: Sequence[str]) -> None:
    """Make ``recipient`` a direct member of exactly ``groups`` (each group gets a new change
    number, so the change reaches every process)."""
    rid = int(recipient.id or 0)
    wanted: dict[int, Recipient] = {}
    for name in groups:
        group = _get(conn, name)
        if group.kind != "group":
            raise PostroomError(
                f"'{group.alias}' is a {group.kind}, not a group: only groups have members."
            )
        if group.id == rid:
            raise PostroomError(f"The group '{group.alias}' cannot be a member of itself.")
        wanted[int(group.id or 0)] = group
    current = set(rows.member_of(conn, rid))
    current_ids = {int(_get(conn, name).id or 0) for name in current}
    for group_id in current_ids ^ set(wanted):
        group = rows.recipients_by_id(conn, [group_id])[0]
        member_ids = [int(_get(conn, m).id or 0) for m in group.members]
        if group_id in wanted:
            member_ids.append(rid)
        else:
            member_ids = [m for m in member_ids if m != rid]
        rows.set_members(conn, group_id, member_ids)
        rows.update_recipient(conn, dataclasses.replace(group, modified=now()), next_usn(conn))


# -- what a new recipient will get --------------------------------------------------------------


@dataclass(frozen=True)
class AddressPreview:
    """The addresses the Recipient Update Service would stamp on a recipient as it is typed."""

    policy: str | None
    """The effective policy's name; None when no policy's filter matches."""
    addresses: tuple[str, ...]
    """Its enabled SMTP rules' addresses, the primary first (before collision suffixes)."""
    taken: tuple[str, ...]
    """Those of ``addresses`` another recipient already has (the RUS will append 2, 3, …)."""


def preview_addresses(
    store: Store,
    alias: str,
    kind: RecipientKind = "user",
    attributes: Mapping[str, str] | None = None,
) -> AddressPreview:
    """Which policy a recipient with these values would fall under and what it would get."""
    attrs = {k: v for k, v in (attributes or {}).items() if v}
    attrs.setdefault("displayName", default_display_name(attrs, alias))
    draft = Recipient(alias=alias.strip(), kind=kind, attributes=attrs)
    with store.read() as conn:
        policy = PolicySet(policy_rows.load_policies(conn)).effective(draft)
        if policy is None:
            return AddressPreview(None, (), ())
        values = addressing.NameValues(
            alias=draft.alias,
            given=draft.attribute("givenName"),
            surname=draft.attribute("sn"),
            initials=draft.attribute("initials"),
            display=draft.attribute("displayName"),
        )
        made: list[str] = []
        rules = sorted(
            (rule for rule in policy.rules if rule.enabled and rule.is_smtp),
            key=lambda rule: not rule.primary,
        )
        for rule in rules:
            try:
                address = addressing.generate_address(
                    addressing.parse_template(rule.address), values
                )
            except PostroomError:
                continue
            if address.lower() not in (a.lower() for a in made):
                made.append(address)
        taken = tuple(a for a in made if rows.address_owner(conn, SMTP, a) is not None)
    return AddressPreview(policy.name, tuple(made), taken)
