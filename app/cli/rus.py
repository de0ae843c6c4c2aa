"""``postroom rus …``: Update Now, Rebuild, status, schedule, and why a recipient has an address."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from app import rus
from app.cli.common import Context, add_json_flag, emit
from app.cli.policy import display_rule
from app.errors import PostroomError
from app.rus.runner import Progress, describe_owner
from app.rus.schedule import MODES, parse_week
from app.store.rus import RunRecord

_KIND_NAMES = {"update": "Update Now", "rebuild": "Rebuild"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("rus", help="Recipient Update Service")
    commands = parser.add_subparsers(dest="rus_command", metavar="ACTION", required=True)

    p = commands.add_parser(
        "update", help="Update Now: stamp recipients changed since the last run"
    )
    add_json_flag(p)
    p.set_defaults(func=run_command, kind="update")

    p = commands.add_parser("rebuild", help="look at every recipient (can take long)")
    add_json_flag(p)
    p.set_defaults(func=run_command, kind="rebuild")

    p = commands.add_parser("status", help="last run, run under way, schedule")
    add_json_flag(p)
    p.set_defaults(func=status_command)

    p = commands.add_parser("explain", help="why a recipient has each address, or was skipped")
    p.add_argument("alias")
    add_json_flag(p)
    p.set_defaults(func=explain_command)

    p = commands.add_parser("schedule", help="show or set when the service runs by itself")
    p.add_argument(
        "mode", nargs="?", choices=MODES, help="always, every 1h/2h/4h, never, or custom hours"
    )
    p.add_argument(
        "--hours", metavar="SPEC", help="with custom: e.g. 'mon-fri 8-17; sat 10' (local time)"
    )
    add_json_flag(p)
    p.set_defaults(func=schedule_command)


def run_json(record: RunRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)


def run_text(record: RunRecord) -> str:
    outcome = "" if record.outcome == "completed" else f" ({record.outcome})"
    return (
        f"{_KIND_NAMES[record.kind]}{outcome}: examined {record.examined}, "
        f"changed {record.changed}, errors {record.errors}, in {record.duration or 0:.2f} s "
        f"(run {record.id})."
    )


def run_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    interactive = sys.stderr.isatty() and not args.json

    def on_wait(holder: str) -> None:
        print(
            f"postroom: waiting for the Recipient Update Service run of {describe_owner(holder)}"
            " to finish…",
            file=sys.stderr,
        )

    def on_progress(progress: Progress) -> None:
        if interactive and progress.total:
            end = "\n" if progress.done == progress.total else ""
            print(f"\r{progress.done}/{progress.total}", end=end, file=sys.stderr, flush=True)

    if args.kind == "rebuild" and not args.json:
        print("postroom: rebuilding looks at every recipient; this can take long.", file=sys.stderr)
    record = rus.run(store, args.kind, on_progress=on_progress, on_wait=on_wait)
    if record is None:  # only when cancelled while waiting, which this command never does
        raise PostroomError("The run was cancelled before it started.")
    if record.outcome == "failed":
        raise PostroomError(f"The Recipient Update Service run failed: {record.message}")
    text = run_text(record)
    errors = rus.run_errors(store, record.id) if record.errors else []
    for alias, message in errors:
        text += f"\n  {alias}: {message}"
    if errors:
        text += "\nSee why with: postroom rus explain ALIAS"
    data = run_json(record)
    data["error_recipients"] = [{"alias": a, "message": m} for a, m in errors]
    return emit(args, text, data)


def status_command(args: argparse.Namespace, context: Context) -> int:
    status = rus.read_status(context.store())
    lines = [f"Update interval:  {status.schedule.describe()}"]
    warning = status.schedule.warning
    if warning:
        lines.append(f"                  {warning}")
    last = status.last_run
    if last is None:
        lines.append("Last run:         never")
    else:
        outcome = "" if last.outcome == "completed" else f", {last.outcome}"
        lines += [
            f"Last run:         {last.started} ({_KIND_NAMES[last.kind]}{outcome}, run {last.id})",
            f"Duration:         {last.duration or 0:.2f} s",
            f"Examined:         {last.examined}",
            f"Changed:          {last.changed}",
            f"Errors:           {last.errors}",
        ]
        if last.message:
            lines.append(f"Message:          {last.message}")
    running = status.running
    if running is None:
        lines.append("Status:           idle")
    else:
        lines.append(
            f"Status:           running {_KIND_NAMES[running.kind]} in "
            f"{describe_owner(running.owner)} ({running.done}/{running.total})"
        )
    if status.pending_policies:
        names = ", ".join(f"'{name}'" for name in status.pending_policies)
        lines.append(f"Applied policies: {names} (waiting for the next run)")
    if status.work_waiting and running is None:
        lines.append("Waiting work:     yes (postroom rus update does it now)")
    data = {
        "schedule": status.schedule.as_json(),
        "schedule_text": status.schedule.describe(),
        "last_run": run_json(last) if last else None,
        "running": run_json(running) if running else None,
        "high_water_mark": status.high_water_mark,
        "pending_policies": list(status.pending_policies),
        "work_waiting": status.work_waiting,
    }
    return emit(args, "\n".join(lines), data)


def explain_command(args: argparse.Namespace, context: Context) -> int:
    found = rus.explain(context.store(), args.alias)
    recipient, policy, decision = found.recipient, found.policy, found.decision
    lines = [f"Recipient:        {recipient.alias} ({recipient.display_name})"]
    if policy is None:
        lines.append("Effective policy: none (no policy's filter matches it)")
    else:
        lines.append(
            f"Effective policy: {policy.name} (priority {policy.priority_text}, "
            f"filter {policy.filter})"
        )
    if not recipient.auto_update:
        lines.append("Automatic update: off (the service never changes its addresses)")
    if decision is None:
        lines.append("Last run:         no run has looked at it yet")
    else:
        when = f" on {found.run.started}" if found.run else ""
        lines.append(
            f"Last run:         run {decision.run_id}{when}: {decision.decision}"
            + (f" with '{decision.policy}'" if decision.policy else "")
            + f", because {decision.reason}"
        )
    lines.append("Addresses:")
    for reason in found.addresses:
        lines.append(f"  {reason.address}")
        lines.append(f"      {reason.text}")
    if not found.addresses:
        lines.append("  (none)")
    for rule, why in found.idle_rules:
        lines.append(f"Rule {display_rule(rule)} ({rule.type}): {why}")
    lines.append(f"Next:             {found.next_run}")
    data = {
        "alias": recipient.alias,
        "auto_update": recipient.auto_update,
        "effective_policy": policy.name if policy else None,
        "last_decision": None
        if decision is None
        else {
            "run": decision.run_id,
            "time": found.run.started if found.run else None,
            "decision": decision.decision,
            "policy": decision.policy,
            "reason": decision.reason,
        },
        "addresses": [
            {
                "type": r.address.type,
                "address": r.address.address,
                "primary": r.address.primary,
                "policy": r.provenance.policy if r.provenance else None,
                "rule": r.provenance.rule if r.provenance else None,
                "suffix": r.provenance.suffix if r.provenance else None,
                "run": r.provenance.run_id if r.provenance else None,
                "plain_address_owner": r.plain_owner,
                "explanation": r.text,
            }
            for r in found.addresses
        ],
        "idle_rules": [
            {"type": r.type, "address": r.address, "why": w} for r, w in found.idle_rules
        ],
        "next_run": found.next_run,
    }
    return emit(args, "\n".join(lines), data)


def schedule_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    if args.mode is None:
        if args.hours:
            raise PostroomError("Give the mode too: postroom rus schedule custom --hours SPEC")
        schedule = rus.load_schedule(store)
        return emit(args, schedule.describe(), schedule.as_json())
    if args.hours and args.mode != "custom":
        raise PostroomError("--hours goes with the custom mode: rus schedule custom --hours SPEC")
    if args.mode == "custom" and not args.hours:
        raise PostroomError(
            "A custom schedule needs its hours, e.g.: postroom rus schedule custom "
            "--hours 'mon-fri 8-17'"
        )
    week = parse_week(args.hours) if args.hours else None
    schedule = rus.make_schedule(args.mode, week)
    rus.save_schedule(store, schedule)
    text = f"Update interval: {schedule.describe()}."
    if schedule.warning:
        text += f"\n{schedule.warning}"
    return emit(args, text, schedule.as_json())
