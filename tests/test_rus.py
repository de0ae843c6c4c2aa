"""The Recipient Update Service's rules (DESIGN §5), run against a real store in tmp_path."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import organization, policies, rus
from app.directory import recipients
from app.errors import NotFoundError
from app.model import ProxyAddress, Recipient, RecipientPolicy
from app.store import Store
from app.store import directory as directory_rows
from app.store import rus as rus_rows
from app.store.database import current_usn
from app.store.rus import RunRecord


def run(store: Store, kind: rus.RunKind = "update", **options: object) -> RunRecord:
    record = rus.run(store, kind, **options)  # type: ignore[arg-type]
    assert record is not None
    assert record.outcome == "completed", record
    return record


def person(store: Store, alias: str, given: str = "", surname: str = "", **attrs: str) -> None:
    attributes = {"givenName": given, "sn": surname, **attrs}
    recipients.create_recipient(store, alias, attributes={k: v for k, v in attributes.items() if v})


def addresses(store: Store, alias: str) -> list[str]:
    """The recipient's addresses as Exchange shows them: SMTP: primary, smtp: secondary."""
    return [str(a) for a in recipients.get_recipient(store, alias).addresses]


def smtp_set(store: Store, alias: str) -> set[str]:
    return {a.address for a in recipients.get_recipient(store, alias).addresses}


# -- the rules of DESIGN §5 ---------------------------------------------------------------------


def test_a_new_recipient_gets_the_addresses_of_its_policy(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "%g.%s@example.net")
    person(store, "jsmith", "John", "Smith")
    assert addresses(store, "jsmith") == []

    record = run(store)

    assert (record.examined, record.changed, record.errors) == (1, 1, 0)
    assert addresses(store, "jsmith") == ["SMTP:jsmith@example.com", "smtp:John.Smith@example.net"]
    assert recipients.get_recipient(store, "jsmith").stamped_usn is not None


def test_a_changed_name_without_apply_keeps_the_old_addresses(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "%g.%s@example.net")
    person(store, "jsmith", "John", "Smith")
    run(store)
    before = addresses(store, "jsmith")

    recipients.edit_recipient(store, "jsmith", attributes={"sn": "Smyth"})
    record = run(store)

    assert record.examined == 1 and record.changed == 0
    assert addresses(store, "jsmith") == before
    explained = rus.explain(store, "jsmith")
    assert explained.decision is not None and explained.decision.decision == "kept"
    assert "has not been applied since it was last stamped" in explained.decision.reason


def test_apply_adds_the_new_addresses_and_demotes_the_old_primary(store: Store) -> None:
    person(store, "jsmith", "John", "Smith")
    run(store)
    recipients.add_address(store, "jsmith", "john@elsewhere.example")
    policies.add_rule(store, "Default Policy", "%g.%s@example.com", primary=True)
    assert addresses(store, "jsmith") == ["SMTP:jsmith@example.com", "smtp:john@elsewhere.example"]

    run(store)  # saved, not applied: nothing changes
    assert addresses(store, "jsmith") == ["SMTP:jsmith@example.com", "smtp:john@elsewhere.example"]

    policies.apply_policy(store, "Default Policy")
    record = run(store)

    assert record.changed == 1
    assert addresses(store, "jsmith") == [
        "smtp:jsmith@example.com",
        "smtp:john@elsewhere.example",
        "SMTP:John.Smith@example.com",
    ]
    assert not policies.get_policy(store, "Default Policy").apply_pending


def test_auto_update_off_is_skipped_even_by_rebuild(store: Store) -> None:
    recipients.create_recipient(store, "manual", auto_update=False)
    recipients.add_address(store, "manual", "chosen@example.org")
    policies.apply_policy(store, "Default Policy")

    record = run(store, "rebuild")

    assert record.examined == 1 and record.changed == 0
    assert addresses(store, "manual") == ["SMTP:chosen@example.org"]
    assert recipients.get_recipient(store, "manual").stamped_usn is None
    decision = rus.explain(store, "manual").decision
    assert decision is not None and decision.decision == "skipped"
    assert "'Automatically update e-mail addresses based on recipient policy' is off" in (
        decision.reason
    )


def test_the_highest_priority_matching_policy_wins(store: Store) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.add_rule(store, "Sales", "@sales.example.com")
    policies.create_policy(store, "Berlin", "(l=Berlin)")
    policies.add_rule(store, "Berlin", "@berlin.example.com")
    person(store, "anna", "Anna", "Berg", department="Sales", l="Berlin")
    person(store, "bert", "Bert", "Lang", l="Berlin")
    person(store, "carl", "Carl", "Ott")

    run(store)

    assert addresses(store, "anna") == ["SMTP:anna@sales.example.com"]
    assert addresses(store, "bert") == ["SMTP:bert@berlin.example.com"]
    assert addresses(store, "carl") == ["SMTP:carl@example.com"]
    explained = rus.explain(store, "anna")
    assert explained.policy is not None and explained.policy.name == "Sales"

    # Berlin first now; Anna's addresses follow only once Berlin is applied.
    policies.move_policy(store, "Berlin", "up")
    run(store, "rebuild")
    assert addresses(store, "anna") == ["SMTP:anna@sales.example.com"]
    policies.apply_policy(store, "Berlin")
    run(store)
    assert addresses(store, "anna") == [
        "smtp:anna@sales.example.com",
        "SMTP:anna@berlin.example.com",
    ]


def test_an_unticked_rule_generates_nothing(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "%g.%s@example.net", enabled=False)
    person(store, "jsmith", "John", "Smith")

    run(store, "rebuild")

    assert addresses(store, "jsmith") == ["SMTP:jsmith@example.com"]
    idle = rus.explain(store, "jsmith").idle_rules
    assert [(rule.address, why) for rule, why in idle] == [
        ("%g.%s@example.net", "unticked, so it generates nothing")
    ]


def test_collisions_get_2_3_and_the_older_object_keeps_the_plain_address(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "%g.%s@example.com", primary=True)
    for alias in ("js1", "js2", "js3"):
        person(store, alias, "John", "Smith")
    # The newest gets touched first: change numbers, not edit order, decide.
    recipients.edit_recipient(store, "js1", attributes={"title": "Boss"})

    run(store)

    assert recipients.get_recipient(store, "js2").primary_address() == "John.Smith@example.com"
    assert recipients.get_recipient(store, "js3").primary_address() == "John.Smith2@example.com"
    assert recipients.get_recipient(store, "js1").primary_address() == "John.Smith3@example.com"
    reasons = {r.address.address: r for r in rus.explain(store, "js1").addresses}
    suffixed = reasons["John.Smith3@example.com"]
    assert suffixed.provenance is not None and suffixed.provenance.suffix == 3
    assert suffixed.provenance.plain == "John.Smith@example.com"
    assert suffixed.plain_owner == "js2"
    assert "collision suffix 3 because John.Smith@example.com belongs to 'js2'" in suffixed.text


def test_collisions_ignore_case_and_count_addresses_typed_by_hand(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "%g.%s@example.com", primary=True)
    recipients.create_recipient(store, "other", auto_update=False)
    recipients.add_address(store, "other", "JOHN.SMITH@Example.COM")
    person(store, "jsmith", "John", "Smith")

    run(store)

    assert recipients.get_recipient(store, "jsmith").primary_address() == "John.Smith2@example.com"
    assert addresses(store, "other") == ["SMTP:JOHN.SMITH@example.com"]


def test_an_address_is_never_deleted(store: Store) -> None:
    person(store, "jsmith", "John", "Smith")
    run(store)
    policies.add_rule(store, "Default Policy", "@example.net", primary=True)
    policies.remove_rule(store, "Default Policy", "@example.com")
    policies.apply_policy(store, "Default Policy")

    run(store)

    assert addresses(store, "jsmith") == ["smtp:jsmith@example.com", "SMTP:jsmith@example.net"]
    reasons = {r.address.address: r.text for r in rus.explain(store, "jsmith").addresses}
    assert reasons["jsmith@example.net"].startswith("made by the rule @example.net")
    # The old address keeps the provenance of the stamp that made it.
    assert reasons["jsmith@example.com"].startswith("made by the rule @example.com")


def test_a_recipient_without_any_address_is_stamped_again(store: Store) -> None:
    person(store, "jsmith", "John", "Smith")
    run(store)
    recipients.set_addresses(store, "jsmith", [])
    run(store)
    assert addresses(store, "jsmith") == ["SMTP:jsmith@example.com"]
    decision = rus.explain(store, "jsmith").decision
    assert decision is not None and decision.reason == "it had no e-mail address"


# -- high-water mark, applied state, decisions --------------------------------------------------


def test_stamping_does_not_make_an_object_look_changed(store: Store) -> None:
    for n in range(3):
        person(store, f"u{n}")
    assert run(store).examined == 3
    assert run(store).examined == 0
    recipients.edit_recipient(store, "u1", attributes={"title": "New"})
    record = run(store)
    assert (record.examined, record.changed) == (1, 0)
    assert rus.read_status(store).work_waiting is False


def test_apply_looks_only_at_the_policys_objects_and_clears_the_applied_state(
    store: Store,
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.add_rule(store, "Sales", "@sales.example.com")
    person(store, "anna", department="Sales")
    person(store, "bert")
    run(store)
    policies.add_rule(store, "Sales", "%m@shop.example.com", primary=True)
    policies.apply_policy(store, "Sales")

    record = run(store)

    assert (record.examined, record.changed) == (1, 1)
    assert addresses(store, "anna") == [
        "smtp:anna@sales.example.com",
        "SMTP:anna@shop.example.com",
    ]
    assert not policies.get_policy(store, "Sales").apply_pending
    assert run(store).examined == 0


def test_a_cancelled_run_keeps_the_applied_state_and_the_high_water_mark(store: Store) -> None:
    for n in range(6):
        person(store, f"u{n}")
    run(store)
    policies.add_rule(store, "Default Policy", "@example.net", primary=True)
    policies.apply_policy(store, "Default Policy")
    cancel = threading.Event()

    def stop_after_first_batch(progress: rus.Progress) -> None:
        if progress.done:
            cancel.set()

    record = rus.run(
        store, "update", batch_size=2, cancel=cancel, on_progress=stop_after_first_batch
    )

    assert record is not None and record.outcome == "cancelled"
    assert record.examined == 2
    assert policies.get_policy(store, "Default Policy").apply_pending
    assert rus.read_status(store).work_waiting
    assert run(store).examined == 4  # the rest, not the two already stamped
    assert not policies.get_policy(store, "Default Policy").apply_pending


def test_a_policy_applied_again_during_a_run_stays_applied(store: Store) -> None:
    for n in range(4):
        person(store, f"u{n}")
    run(store)
    policies.apply_policy(store, "Default Policy")

    def apply_again(progress: rus.Progress) -> None:
        if progress.done == 2:
            policies.add_rule(store, "Default Policy", "@example.net", primary=True)
            policies.apply_policy(store, "Default Policy")

    rus.run(store, batch_size=2, on_progress=apply_again)

    assert policies.get_policy(store, "Default Policy").apply_pending
    run(store)
    assert not policies.get_policy(store, "Default Policy").apply_pending
    for n in range(4):
        assert recipients.get_recipient(store, f"u{n}").primary_address() == f"u{n}@example.net"


def test_one_decision_row_per_recipient_however_many_runs(store: Store) -> None:
    for n in range(5):
        person(store, f"u{n}")
    for _ in range(4):
        run(store, "rebuild")
    with store.read() as conn:
        count = conn.execute("SELECT count(*) FROM rus_decisions").fetchone()[0]
    assert count == 5


def test_explain_before_any_run_and_for_an_unknown_alias(store: Store) -> None:
    person(store, "jsmith", "John", "Smith")
    explained = rus.explain(store, "jsmith")
    assert explained.decision is None
    assert explained.next_run.startswith("the next Update Now will stamp it: it had never been")
    with pytest.raises(NotFoundError, match="no recipient with the alias 'nobody'"):
        rus.explain(store, "nobody")


def test_status_is_persisted_for_other_processes(store: Store) -> None:
    person(store, "a")
    record = run(store)
    other = Store.open(store.paths.root)
    try:
        status = rus.read_status(other)
    finally:
        other.close()
    assert status.last_run == record
    assert status.running is None
    assert status.last_run is not None and status.last_run.examined == 1


# -- concurrency -----------------------------------------------------------------------------


def expected_stamp(store: Store, alias: str) -> bool:
    """True if fully stamped with both rules' addresses, False if untouched; anything else fails."""
    recipient = recipients.get_recipient(store, alias)
    if recipient.stamped_usn is None:
        assert recipient.addresses == (), f"{alias} is half-stamped: {recipient.addresses}"
        return False
    assert {a.address for a in recipient.addresses} == {
        f"{alias}@example.com",
        f"{alias}@example.net",
    }, f"{alias} is half-stamped"
    assert recipient.primary_address() == f"{alias}@example.com"
    return True


def test_a_cancelled_run_leaves_each_recipient_fully_stamped_or_untouched(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "@example.net")
    for n in range(25):
        person(store, f"u{n:02d}")
    cancel = threading.Event()

    def cancel_midway(progress: rus.Progress) -> None:
        if progress.done >= 10:
            cancel.set()

    record = rus.run(store, "rebuild", batch_size=4, cancel=cancel, on_progress=cancel_midway)

    assert record is not None and record.outcome == "cancelled"
    stamped = [expected_stamp(store, f"u{n:02d}") for n in range(25)]
    assert stamped == [True] * 12 + [False] * 13
    assert record.examined == 12


def test_an_interrupted_batch_is_rolled_back_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies.add_rule(store, "Default Policy", "@example.net")
    for n in range(6):
        person(store, f"u{n}")
    calls = 0
    real = rus_rows.record_stamps

    def crash_in_second_batch(conn: object, rows: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # as if the process were stopped mid-transaction
        real(conn, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(rus_rows, "record_stamps", crash_in_second_batch)
    with pytest.raises(KeyboardInterrupt):
        rus.run(store, "rebuild", batch_size=3)
    monkeypatch.undo()

    assert [expected_stamp(store, f"u{n}") for n in range(6)] == [True] * 3 + [False] * 3
    status = rus.read_status(store)
    assert status.running is None  # the lease was given back
    assert status.last_run is not None and status.last_run.outcome == "cancelled"
    run(store)
    assert all(expected_stamp(store, f"u{n}") for n in range(6))


def test_edits_during_a_run_are_not_lost(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "%g@example.net")
    for n in range(6):
        person(store, f"u{n}", f"First{n}")

    def edit_between_batches(progress: rus.Progress) -> None:
        if progress.done == 3:
            recipients.edit_recipient(store, "u4", attributes={"givenName": "Renamed"})
            recipients.add_address(store, "u5", "mine@example.org")

    rus.run(store, "rebuild", batch_size=3, on_progress=edit_between_batches)

    u4 = recipients.get_recipient(store, "u4")
    assert u4.attribute("givenName") == "Renamed"
    assert smtp_set(store, "u4") == {"u4@example.com", "Renamed@example.net"}
    assert smtp_set(store, "u5") == {"mine@example.org", "u5@example.com", "First5@example.net"}
    assert recipients.get_recipient(store, "u5").primary_address() == "u5@example.com"


def test_an_address_taken_behind_the_runs_back_is_not_duplicated(store: Store) -> None:
    """Someone writes an address without taking a change number: the batch is retried."""
    for n in range(1100):  # enough for the preloaded address index
        directory_insert(store, f"u{n:04d}", "Same")
    sneaked: list[int] = []

    def sneak(progress: rus.Progress) -> None:
        if progress.done == 1000 and not sneaked:
            with store.write() as conn:
                holder = directory_rows.find_recipient(conn, "u0000")
                assert holder is not None and holder.id is not None
                directory_rows.replace_addresses(
                    conn,
                    holder.id,
                    [*holder.addresses, ProxyAddress("SMTP", "u1050@example.com")],
                )
                sneaked.append(holder.id)

    record = rus.run(store, "rebuild", batch_size=1000, on_progress=sneak, helper=False)

    assert record is not None and record.outcome == "completed" and record.errors == 0
    assert smtp_set(store, "u1050") == {"u10502@example.com"}
    assert "u1050@example.com" in smtp_set(store, "u0000")


def directory_insert(store: Store, alias: str, surname: str) -> None:
    """A user straight into the directory (no Maildir), for runs of many recipients."""
    with store.write() as conn:
        recipient = Recipient(alias=alias, attributes={"sn": surname, "displayName": alias})
        directory_rows.insert_recipient(conn, recipient, current_usn(conn) + 1, None)
        conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'usn'")


def test_the_helper_process_changes_speed_not_results(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = Store.open(tmp_path / "copy")
    try:
        organization.initialize(copy, "Test Organization", "example.com")
        for each in (store, copy):
            policies.add_rule(each, "Default Policy", "%g.%s@example.net")
            policies.create_policy(each, "Sales", "(department=Sales)")
            policies.add_rule(each, "Sales", "%1g%s@sales.example.com")
            for n in range(300):
                person_fast(each, f"u{n:03d}", f"G{n % 7}", f"S{n % 5}", "Sales" if n % 3 else "")
        edited: list[str] = []

        def edit(progress: rus.Progress) -> None:
            if progress.done == 50:
                time.sleep(1.0)  # the helper starts and reads ahead, u201's batch included
            if progress.done == 150 and not edited:
                recipients.edit_recipient(copy, "u201", attributes={"givenName": "Late"})
                recipients.edit_recipient(store, "u201", attributes={"givenName": "Late"})
                edited.append("u201")

        with caplog.at_level(logging.INFO, logger="app.rus.runner"):
            with_helper = rus.run(copy, "rebuild", batch_size=50, helper=True, on_progress=edit)
        used = [r.args for r in caplog.records if "prepared by the helper" in r.getMessage()]
        assert used and used[0][1] > 0, used  # type: ignore[index,operator]
        without = rus.run(store, "rebuild", batch_size=50, helper=False)
        assert with_helper is not None and without is not None
        assert (with_helper.examined, with_helper.changed) == (without.examined, without.changed)
        assert everyones_addresses(copy) == everyones_addresses(store)
        assert "Late.S1@example.net" in smtp_set(copy, "u201")
    finally:
        copy.close()


def person_fast(store: Store, alias: str, given: str, surname: str, department: str) -> None:
    attributes = {"givenName": given, "sn": surname, "displayName": f"{given} {surname}"}
    if department:
        attributes["department"] = department
    with store.write() as conn:
        recipient = Recipient(alias=alias, attributes=attributes)
        directory_rows.insert_recipient(conn, recipient, current_usn(conn) + 1, None)
        conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'usn'")


def everyones_addresses(store: Store) -> dict[str, tuple[ProxyAddress, ...]]:
    return {r.alias: r.addresses for r in recipients.list_recipients(store)}


# -- the lease -----------------------------------------------------------------------------


@pytest.fixture
def foreign_lease(store: Store) -> Iterator[str]:
    """The lease held by another (pretend) process for 30 s."""
    owner = "otherhost:4242:abcdef01"
    with store.write() as conn:
        assert rus_rows.acquire_lease(conn, owner, time.time(), 30) == owner
    yield owner


def test_a_run_waits_for_another_processs_run(store: Store, foreign_lease: str) -> None:
    person(store, "a")
    waited: list[str] = []
    done: list[RunRecord | None] = []
    thread = threading.Thread(target=lambda: done.append(rus.run(store, on_wait=waited.append)))
    thread.start()
    thread.join(1.0)
    assert thread.is_alive() and waited == [foreign_lease]
    assert addresses(store, "a") == []
    assert rus.read_status(store).running is None  # the other one has no run row here

    with store.write() as conn:
        rus_rows.release_lease(conn, foreign_lease)
    thread.join(5)
    assert not thread.is_alive()
    assert done[0] is not None and done[0].outcome == "completed"
    assert addresses(store, "a") == ["SMTP:a@example.com"]


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    with store.write() as conn:
        rus_rows.acquire_lease(conn, "crashed:1:00000000", time.time() - 60, 30)
    person(store, "a")
    assert run(store).examined == 1


def test_waiting_for_the_lease_can_be_cancelled(store: Store, foreign_lease: str) -> None:
    cancel = threading.Event()
    cancel.set()
    assert rus.run(store, cancel=cancel) is None


def test_suffixes_in_a_big_run_are_2_3_4_in_change_number_order(store: Store) -> None:
    """Big runs resolve collisions from the preloaded index with suffix hints: same result."""
    policies.add_rule(store, "Default Policy", "%s@example.net", primary=True)
    names = ["Berg", "Lang", "Ott"]
    for n in range(1200):  # more than LAZY_LIMIT, so the address index is preloaded
        person_fast(store, f"u{n:04d}", "", names[n % 3], "")
    recipients.create_recipient(store, "hand", auto_update=False)
    recipients.add_address(store, "hand", "Lang7@example.net")  # taken by hand: skipped

    record = run(store, "rebuild", helper=False)

    assert record.examined == 1201 and record.errors == 0
    primaries = {r.alias: r.primary_address() for r in recipients.list_recipients(store)}
    for offset, name in enumerate(names):
        got = [primaries[f"u{n:04d}"] for n in range(offset, 1200, 3)]
        suffixes = [""] + [str(k) for k in range(2, 402) if not (name == "Lang" and k == 7)]
        assert got == [f"{name}{suffix}@example.net" for suffix in suffixes[:400]], name

    # Stamped again, the newest-changed Berg keeps its own Berg2 though the hint is far past 2.
    recipients.edit_recipient(store, "u0003", attributes={"title": "Newest"})
    policies.apply_policy(store, "Default Policy")
    again = run(store, helper=False)
    assert again.examined == 1201 and again.changed == 0
    assert recipients.get_recipient(store, "u0003").primary_address() == "Berg2@example.net"


@pytest.mark.parametrize(
    "filters",
    [
        ["(department=Sales)", "(&(l=Berlin)(objectClass=user))", "(company=*)"],
        ["(|(sn=B*)(givenName=*a*))", "(!(department=Sales))", "(title>=M)"],
        ["(&(mailNickname=*)(!(l=*)))", "(objectClass=contact)", "(extensionAttribute1=x)"],
    ],
)
def test_the_runs_policy_matching_agrees_with_effective_policy(filters: list[str]) -> None:
    """The run remembers effective policies per look-alike recipient; never a different answer."""
    rules = [RecipientPolicy(name=f"P{n}", filter=f, priority=n + 1) for n, f in enumerate(filters)]
    ordered = [*rules, RecipientPolicy(name="Default", filter="(mailNickname=*)", is_default=True)]
    matcher = policies.PolicySet(ordered)
    values = {
        "department": ["", "Sales", "sales", "Support"],
        "l": ["", "Berlin", "Paris"],
        "company": ["", "Contoso"],
        "sn": ["", "Berg", "Lang"],
        "givenName": ["", "Anna", "Bob"],
        "title": ["", "Manager", "Clerk", "Zoo"],
        "extensionAttribute1": ["", "x", "X"],
    }
    for n, combo in enumerate(itertools.product(*values.values())):
        attributes = {k: v for k, v in zip(values, combo, strict=True) if v}
        for kind in ("user", "contact"):
            recipient = Recipient(alias=f"a{n}", kind=kind, attributes=attributes)  # type: ignore[arg-type]
            expected = policies.effective_policy(ordered, recipient)
            assert matcher.effective(recipient) == expected, (attributes, kind)
