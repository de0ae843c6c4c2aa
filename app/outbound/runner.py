"""The running queue: sends what waits in ``<data>/queue/`` to its next hops, with retries,
delay warnings, expiry and notifications, on an event loop of its own.

One process at a time owns the queue (``QueueLock``): ``postroom serve`` or the console's
service. New mail is noticed by the ``active/`` folder changing (any process may add to it);
the administrator's requests arrive in ``control/``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app.dns.lookup import DnsConfig
from app.dns.routes import ThisServer, dns_config_from_settings
from app.errors import PostroomError
from app.model import SmtpConnector
from app.outbound import control, local, notices
from app.outbound.hops import Hop, HopError, Kind, Tier, Unroutable, hop_of, tiers_for
from app.outbound.queue import Item, Request, apply, load_item
from app.outbound.sender import (
    DeliveryResult,
    Outcome,
    RecipientResult,
    SendOptions,
    send_batch,
)
from app.queue import spool, state
from app.queue.state import Deferral, Done, Fate
from app.settings import Settings
from app.smtp.events import EventKind, EventRecorder, SmtpEvent
from app.smtp.routing import DirectoryIndex, Router
from app.store import Store

log = logging.getLogger(__name__)

#: Messages sent over one connection before it is closed and another opened.
BATCH = 20
#: How often the queue looks for due retries when nothing wakes it (seconds).
TICK = 0.25
#: The queue folder is listed again at least this often, whatever its time stamp says.
RESCAN_SECONDS = 5.0
#: How long a hop's hosts (from DNS) are remembered.
HOSTS_SECONDS = 30.0


@dataclass
class _HopQueue:
    """One next hop's waiting work and the connections open to it."""

    hop: Hop
    waiting: collections.deque[tuple[Item, list[str]]] = field(default_factory=collections.deque)
    connections: int = 0
    last_error: str = ""


class QueueRunner:
    """Owns the queue while started. ``start`` returns False when another process owns it."""

    def __init__(
        self,
        store: Store,
        *,
        listeners: Iterable[tuple[str, int]] = (),
        recorder: EventRecorder | None = None,
        tick: float = TICK,
    ) -> None:
        self.store = store
        self.root = store.paths.queue
        self._listeners = list(listeners)
        self._recorder = recorder
        self._tick = tick
        self._lock = state.QueueLock(self.root)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._started = threading.Event()
        self.items: dict[str, Item] = {}
        self._hops: dict[str, _HopQueue] = {}
        self._hop_cache: dict[str, Hop | Unroutable] = {}
        self._hop_counter = -1
        self._hosts: dict[tuple[str, str], tuple[float, list[Tier]]] = {}
        self._connections = 0
        self._active_mtime = -1
        self._scanned = 0.0
        # Finished messages whose removal the disk thread has not done yet: not to be reloaded.
        self._leaving: set[str] = set()
        self._plans: list[notices.Settlement] = []
        self._plans_lock = threading.Lock()
        self._flush_scheduled = False
        self._status: dict[str, Any] = {}
        self._router: Router | None = None
        self._work = ThreadPoolExecutor(8, "postroom-queue-work")
        self._disk = ThreadPoolExecutor(1, "postroom-queue-disk")

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> bool:
        """Take the queue and start sending; False (and nothing started) if another owns it."""
        if self._thread is not None:
            return True
        if not self._lock.try_acquire():
            log.info("the queue in %s is run by another process", self.root)
            return False
        self._stopping = False
        self._router = Router(self.store, self._listeners)
        self._router.start()
        self._thread = threading.Thread(target=self._run, name="postroom-queue", daemon=True)
        self._thread.start()
        self._started.wait(10)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending (connections in progress are cut: their recipients are tried again
        after a restart) and release the queue."""
        if self._thread is None:
            return
        self._stopping = True
        self.wake()
        self._thread.join(timeout)
        self._thread = None
        if self._router is not None:
            self._router.stop()
        self._work.shutdown(wait=True, cancel_futures=True)
        self._disk.shutdown(wait=True)
        self._lock.release()

    def wake(self) -> None:
        """Look at the queue now (any thread)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("the queue runner failed")
        finally:
            with contextlib.suppress(Exception):
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None
            self._started.set()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        await self._in_disk(self._recover)
        self._started.set()
        while not self._stopping:
            try:
                await self._scan()
                await self._take_requests()
                self._schedule(time.time())
                self._report()
            except Exception:
                log.exception("queue pass failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick)
            self._wake.clear()

    async def _in_disk(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._disk, function, *args)

    async def _in_work(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._work, function, *args)

    # -- what is in the queue -----------------------------------------------------------------

    def _recover(self) -> None:
        """At start: the queue's messages with their states; orphaned states removed."""
        for folder in spool.folders(self.root):
            folder.mkdir(mode=0o700, exist_ok=True)
        names = spool.names(self.root)
        for name in state.orphans(self.root, set(names)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(state.state_folder(self.root) / name)

    async def _scan(self) -> None:
        """Add the messages that arrived; forget those removed behind our back."""
        try:
            mtime = os.stat(self.root / "active").st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._active_mtime and time.monotonic() - self._scanned < RESCAN_SECONDS:
            return
        self._active_mtime = mtime
        self._scanned = time.monotonic()
        names = set(spool.names(self.root))
        new = [name for name in names if name not in self.items and name not in self._leaving]
        for name in [name for name in self.items if name not in names]:
            if not self.items[name].busy:
                del self.items[name]
        if new:
            loaded = await self._in_disk(_load_all, self.root, sorted(new))
            for item in loaded:
                self.items[item.name] = item

    @property
    def _index(self) -> DirectoryIndex:
        assert self._router is not None
        return self._router.index

    @property
    def _settings(self) -> Settings:
        return self._index.settings

    def _hop(self, address: str) -> Hop | Unroutable:
        index = self._index
        if index.counter != self._hop_counter:
            self._hop_cache.clear()
            self._hosts.clear()
            self._hop_counter = index.counter
        key = address.lower()
        hop = self._hop_cache.get(key)
        if hop is None:
            hop = self._hop_cache[key] = hop_of(address, index, index.connectors, index.settings)
        return hop

    def _hop_name(self, address: str) -> str:
        hop = self._hop(address)
        return control.UNROUTABLE if isinstance(hop, Unroutable) else hop.name

    # -- the administrator's requests ---------------------------------------------------------

    async def _take_requests(self) -> None:
        requests = control.take_requests(self.root)
        for path, request in requests:
            if isinstance(request, PostroomError):
                await self._in_disk(control.answer, path, False, str(request))
                continue
            await self._carry_out(path, request)

    async def _carry_out(self, path: Any, request: Request) -> None:
        """Apply a request here, on the loop (the states are this thread's), then store it."""
        try:
            change = apply(
                request, self.items.values(), self._hop_name, state.frozen_hops(self.root)
            )
        except PostroomError as error:
            await self._in_disk(control.answer, path, False, str(error))
            return
        if change.frozen_hops is not None:
            await self._in_disk(state.write_frozen_hops, self.root, set(change.frozen_hops))
        for message, address in change.deleted:
            item = self.items.get(message)
            if item is not None:
                self._emit(item, [address], "deleted", None, _deleted_text(request.ndr))
        touched = [self.items[name] for name in change.messages if name in self.items]
        self._settle(touched)
        await self._in_disk(control.answer, path, True, control.describe(request, change))

    # -- scheduling ---------------------------------------------------------------------------

    def _schedule(self, now: float) -> None:
        settings = self._settings
        frozen_hops = state.frozen_hops(self.root)
        settle: list[Item] = []
        for item in list(self.items.values()):
            if item.state.frozen or item.state.next_retry > now:
                continue
            pending = [address for address in item.pending if address not in item.busy]
            if not pending:
                if not item.busy and not item.pending:
                    settle.append(item)
                continue
            if now >= item.arrival + settings.expiration_timeout:
                self._expire(item, pending, now)
                settle.append(item)
                continue
            if not item.state.delay_warned and now >= item.arrival + settings.delay_notification:
                self._warn_delay(item)
            by_hop: dict[str, list[str]] = {}
            refused = False
            for address in pending:
                hop = self._hop(address)
                if isinstance(hop, Unroutable):
                    self._unroutable(item, address, hop, now)
                    refused = True
                    continue
                if hop.name in frozen_hops:
                    continue
                by_hop.setdefault(hop.name, []).append(address)
                queue = self._hops.get(hop.name)
                if queue is None or queue.hop != hop:
                    # A new queue, or its route changed: what waited moves to the new route.
                    self._hops[hop.name] = _HopQueue(hop)
                    if queue is not None:
                        self._hops[hop.name].waiting.extend(queue.waiting)
                        queue.waiting.clear()
            if refused:
                settle.append(item)
            for name, addresses in by_hop.items():
                item.busy.update(addresses)
                self._hops[name].waiting.append((item, addresses))
        if settle:
            self._settle(settle)
        for queue in self._hops.values():
            self._pump(queue)

    def _expire(self, item: Item, pending: list[str], now: float) -> None:
        days = self._settings.expiration_timeout / 86400
        for address in pending:
            last = item.state.deferred.pop(address, None)
            reason = f"; the last attempt: {last.diagnostic}" if last else ""
            item.state.done[address] = Done(
                Fate.EXPIRED,
                "4.4.7",
                f"not delivered within {days:g} days: the message expired{reason}",
                last.remote if last else None,
                now,
            )
        self._emit(item, pending, "expired", None, "the message expired in the queue")

    def _warn_delay(self, item: Item) -> None:
        """Tell the sender, once, that the message is late (if the sender wants to know)."""
        expires = item.arrival + self._settings.expiration_timeout
        self._store([notices.delay_plan(item, expires)], "a delay warning")

    def _unroutable(self, item: Item, address: str, hop: Unroutable, now: float) -> None:
        if hop.permanent:
            item.state.done[address] = Done(Fate.FAILED, hop.status, hop.diagnostic, None, now)
            self._emit(item, [address], "bounced", None, hop.diagnostic)
        else:
            item.state.deferred[address] = Deferral(hop.status, hop.diagnostic, None)
            self._retry_later(item, hop.diagnostic, now)
            self._emit(item, [address], "deferred", None, hop.diagnostic)

    def _retry_later(self, item: Item, error: str, now: float) -> None:
        intervals = self._settings.retry_intervals
        item.state.attempts += 1
        item.state.last_attempt = now
        item.state.last_error = error
        step = intervals[min(item.state.attempts, len(intervals)) - 1]
        item.state.next_retry = now + step

    def _settle(self, items: list[Item]) -> None:
        self._store([notices.plan(item) for item in items], "storing the queue's state")

    def _store(self, plans: list[notices.Settlement], what: str) -> None:
        """Hand the plans to the disk thread. Finished messages are forgotten here, and not
        reloaded before their files are gone. Plans handed over while the disk thread is busy
        are written together, with one fsync of each folder (group commit)."""
        leaving = {plan.item.name for plan in plans if not plan.item.pending}
        self._leaving |= leaving
        for name in leaving:
            item = self.items.get(name)
            if item is not None and not item.busy:
                del self.items[name]
        with self._plans_lock:
            self._plans.extend(plans)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        assert self._loop is not None
        future = self._loop.run_in_executor(self._disk, self._flush, self._settings)
        future.add_done_callback(_log_failure(what))

    def _flush(self, settings: Settings) -> None:
        """Disk thread: write every plan handed over so far."""
        with self._plans_lock:
            plans, self._plans = self._plans, []
            self._flush_scheduled = False
        try:
            notices.store(self.root, plans, settings)
        finally:
            gone = {plan.item.name for plan in plans if not plan.item.pending}
            loop = self._loop
            if loop is not None and gone:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._leaving.difference_update, gone)

    # -- sending ------------------------------------------------------------------------------

    def _pump(self, queue: _HopQueue) -> None:
        """Open connections for the hop's waiting mail: one per batch, within the limits."""
        settings = self._settings
        wanted = min(
            settings.outbound_connections_per_domain, math.ceil(len(queue.waiting) / BATCH)
        )
        while queue.connections < wanted and self._connections < settings.outbound_connections:
            queue.connections += 1
            self._connections += 1
            asyncio.get_running_loop().create_task(self._connection(queue))

    async def _connection(self, queue: _HopQueue) -> None:
        try:
            while queue.waiting and not self._stopping:
                batch = [queue.waiting.popleft() for _ in range(min(BATCH, len(queue.waiting)))]
                try:
                    await self._deliver(queue, batch)
                except Exception:
                    log.exception("sending to %s failed", queue.hop.name)
                    for item, addresses in batch:
                        item.busy.difference_update(addresses)
        finally:
            queue.connections -= 1
            self._connections -= 1

    async def _deliver(self, queue: _HopQueue, batch: list[tuple[Item, list[str]]]) -> None:
        now = time.time()
        hop = queue.hop
        contents: list[bytes | None] = await self._in_work(_read_contents, batch)
        live: list[tuple[tuple[Item, list[str]], bytes | None]] = [
            (entry, content) for entry, content in zip(batch, contents, strict=True) if content
        ]
        results: dict[tuple[str, str], RecipientResult | HopError] = {}
        if hop.kind is Kind.LOCAL:
            for (item, addresses), content in live:
                assert content is not None
                try:
                    await self._in_work(
                        local.deliver, self.store.paths, item.entry, content, addresses, self._index
                    )
                    error: HopError | None = None
                except OSError as failure:
                    error = HopError("4.3.1", f"the mailbox could not be written: {failure}")
                for address in addresses:
                    results[(item.name, address)] = error or _local_done(item, address)
        else:
            await self._send(queue, live, results)
        answered = {name for name, _ in results}
        self._record(queue, [(i, a) for i, a in batch if i.name in answered], results, now)
        for item, addresses in batch:
            item.busy.difference_update(addresses)  # also those whose file vanished meanwhile

    async def _send(
        self,
        queue: _HopQueue,
        live: list[tuple[tuple[Item, list[str]], bytes | None]],
        results: dict[tuple[str, str], RecipientResult | HopError],
    ) -> None:
        settings = self._settings
        first = live[0][0][1][0] if live else ""
        domain = first.rpartition("@")[2]
        try:
            tiers = await self._tiers(queue.hop, domain, settings)
        except HopError as error:
            for (item, addresses), _ in live:
                for address in addresses:
                    results[(item.name, address)] = error
            return
        remaining = [(item, addresses, content) for (item, addresses), content in live]
        for number, tier in enumerate(tiers):
            messages = [item.outbound(c or b"", addresses) for item, addresses, c in remaining]
            recorded: set[int] = set()
            sent = self._record_at_once(queue, list(remaining), recorded)
            options = _options(settings, tier.connector)
            delivered = await send_batch(messages, tier.hosts, options, on_sent=sent)
            unsent: list[tuple[Item, list[str], bytes | None]] = []
            for index, ((item, addresses, content), result) in enumerate(
                zip(remaining, delivered, strict=True)
            ):
                if index in recorded:
                    continue
                if result.host is None and number + 1 < len(tiers) and _all_deferred(result):
                    unsent.append((item, addresses, content))  # every host down: next tier
                    continue
                for recipient in result.recipients:
                    results[(item.name, recipient.recipient.address)] = recipient
            remaining = unsent
            if not remaining:
                break

    def _record_at_once(
        self,
        queue: _HopQueue,
        sending: list[tuple[Item, list[str], bytes | None]],
        recorded: set[int],
    ) -> Callable[[int, DeliveryResult], None]:
        """A callback recording a message the moment its host answered: after a crash, a
        second copy can come only of that message's own window, not the whole batch's."""

        def sent(index: int, result: DeliveryResult) -> None:
            item, addresses, _ = sending[index]
            answered: dict[tuple[str, str], RecipientResult | HopError] = {
                (item.name, r.recipient.address): r for r in result.recipients
            }
            self._record(queue, [(item, addresses)], answered, time.time())
            recorded.add(index)

        return sent

    async def _tiers(self, hop: Hop, domain: str, settings: Settings) -> list[Tier]:
        key = (hop.name, domain)
        cached = self._hosts.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            config: DnsConfig = dns_config_from_settings(settings)
        except PostroomError as error:
            raise HopError("4.4.3", str(error)) from None
        server = ThisServer.from_settings(settings, self._listeners)
        tiers: list[Tier] = await self._in_work(
            tiers_for, hop, domain, config, server, settings.outbound_port
        )
        self._hosts[key] = (time.monotonic() + HOSTS_SECONDS, tiers)
        return tiers

    def _record(
        self,
        queue: _HopQueue,
        batch: list[tuple[Item, list[str]]],
        results: dict[tuple[str, str], RecipientResult | HopError],
        now: float,
    ) -> None:
        touched: list[Item] = []
        for item, addresses in batch:
            item.busy.difference_update(addresses)
            deferred_error = ""
            for address in addresses:
                if address in item.state.done:
                    continue  # deleted by an administrator while it was being sent
                result = results.get((item.name, address))
                if result is None:
                    continue  # the message file vanished: deleted meanwhile
                if isinstance(result, HopError):
                    fate = Outcome.FAILED if result.permanent else Outcome.DEFERRED
                    status, text, remote, code = result.status, result.diagnostic, None, None
                    passed = False
                else:
                    fate, status, text = result.outcome, result.status, result.diagnostic
                    remote, code, passed = result.remote_host, result.reply_code, result.dsn_passed
                if fate is Outcome.DEFERRED:
                    item.state.deferred[address] = Deferral(status, text, remote)
                    deferred_error = text
                    self._emit(item, [address], "deferred", code, text, remote)
                    continue
                item.state.deferred.pop(address, None)
                done_fate = Fate.DELIVERED if fate is Outcome.DELIVERED else Fate.FAILED
                if queue.hop.kind is Kind.LOCAL and done_fate is Fate.DELIVERED:
                    remote = None
                item.state.done[address] = Done(done_fate, status, text, remote, now, False, passed)
                kind: EventKind = "sent" if done_fate is Fate.DELIVERED else "bounced"
                self._emit(item, [address], kind, code, text, remote)
            if deferred_error:
                queue.last_error = deferred_error
                self._retry_later(item, deferred_error, now)
            touched.append(item)
        self._settle(touched)
        self.wake()

    # -- reporting ----------------------------------------------------------------------------

    def _emit(
        self,
        item: Item,
        recipients: list[str],
        kind: EventKind,
        code: int | None,
        reason: str,
        remote: str | None = None,
    ) -> None:
        if self._recorder is None:
            return
        if kind == "deferred" and item.state.next_retry:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item.state.next_retry))
            reason = f"{reason} (next retry after {when})"
        self._recorder.emit(
            SmtpEvent(
                kind,
                time.time(),
                "",
                remote or "",
                item.entry.message_id,
                item.entry.sender,
                tuple(recipients),
                code,
                reason,
                item.entry.queue_id,
            )
        )

    def _report(self) -> None:
        """``status.json``: the connections open per queue, for ``postroom queue list``."""
        status = {
            "pid": os.getpid(),
            "active": {name: q.connections for name, q in self._hops.items() if q.connections},
        }
        if status != self._status:
            self._status = status
            assert self._loop is not None
            future = self._loop.run_in_executor(
                self._disk, state.write_json, self.root / "status.json", status
            )
            future.add_done_callback(_log_failure("writing the queue status"))

    def active(self) -> dict[str, int]:
        """Connections open per queue right now."""
        return dict(self._status.get("active", {}))


def _load_all(root: Any, names: list[str]) -> list[Item]:
    return [item for name in names if (item := load_item(root, name)) is not None]


def _read_contents(batch: list[tuple[Item, list[str]]]) -> list[bytes | None]:
    contents: list[bytes | None] = []
    for item, _ in batch:
        try:
            contents.append(spool.read(item.entry.path)[1])
        except FileNotFoundError:
            contents.append(None)
    return contents


def _local_done(item: Item, address: str) -> RecipientResult:
    recipient = item.outbound(b"", [address]).recipients[0]
    return RecipientResult(
        recipient, Outcome.DELIVERED, "2.0.0", "delivered to the mailbox", 250, None
    )


def _all_deferred(result: DeliveryResult) -> bool:
    return all(r.outcome is Outcome.DEFERRED for r in result.recipients)


def _options(settings: Settings, connector: SmtpConnector | None) -> SendOptions:
    timeout = float(settings.outbound_timeout)
    return SendOptions(
        helo_name=settings.host_name,
        require_tls=connector is not None and connector.tls == "required",
        username=(connector.auth_user or None) if connector is not None else None,
        password=(connector.password or None) if connector is not None else None,
        connect_timeout=min(30.0, timeout),
        command_timeout=timeout,
        data_timeout=timeout,
    )


def _deleted_text(ndr: bool) -> str:
    return f"deleted by an administrator ({'with' if ndr else 'without'} an NDR)"


def _log_failure(what: str) -> Any:
    def check(future: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            error = future.exception()
            if error is not None:
                log.error("%s failed: %s", what, error)

    return check
