"""The throttled outbox: everything the bot sends to Slack, per channel, within Slack's rate limits."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.slack.client import error_text

log = logging.getLogger("cfy_bot.slack")


class Msg:
    """A message the bot posts or edits; `ts` is known once it is posted."""

    def __init__(self, channel: str, ts: str | None = None) -> None:
        self.channel, self.ts = channel, ts
        self.root: Msg | None = None  # the thread's first message, when this one is a reply
        self.done = threading.Event()
        self.failed = False
        self.final = False  # a final edit was queued: nothing older may overwrite it
        self.edited_at = float("-inf")
        if ts:
            self.done.set()


@dataclass
class _Post:
    msg: Msg
    text: str
    blocks: list[dict[str, Any]] | None
    thread: Msg | None
    broadcast: bool
    on_done: Callable[[Msg], None] | None
    tries: int = 0


@dataclass
class _Edit:
    text: str
    blocks: list[dict[str, Any]] | None
    final: bool
    tries: int = 0


class _Lane:
    """One channel's queue: posts in order, at most one pending edit per message."""

    def __init__(self) -> None:
        self.posts: deque[_Post] = deque()
        self.edits: dict[Msg, _Edit] = {}
        self.busy = False
        self.next_post = 0.0
        self.blocked_until = 0.0


class Outbox:
    """Sends to Slack off the caller's thread: ≤ 1 post per `post_interval` per channel, edits of one message
    coalesced to one per `edit_interval` (the final state always delivered), chat.update within a per-minute
    budget, and a channel paused for Retry-After when Slack still answers 429 after the client's own retries.
    Those intervals are measured, and waited out, on `clock` (a FakeClock makes them pass at once)."""

    def __init__(self, client: WebClient, *, post_interval: float = 1.0, edit_interval: float = 3.0,
                 updates_per_minute: int = 50, workers: int = 4, max_tries: int = 5,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock or Clock()
        self.post_interval, self.edit_interval = post_interval, edit_interval
        self.updates_per_minute, self.max_tries = updates_per_minute, max_tries
        self._cond = threading.Condition()
        self._lanes: dict[str, _Lane] = {}
        self._known: OrderedDict[tuple[str, str], Msg] = OrderedDict()
        self._updates: deque[float] = deque()
        self._closed = False
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="slack-out")
        self._thread = threading.Thread(target=self._loop, name="slack-outbox", daemon=True)
        self._thread.start()

    def message(self, channel: str, ts: str) -> Msg:
        """The one Msg for an existing message, so every edit of it is coalesced together."""
        with self._cond:
            msg = self._known.get((channel, ts))
            if msg is None:
                msg = self._known[(channel, ts)] = Msg(channel, ts)
                while len(self._known) > 2000:
                    self._known.popitem(last=False)
            return msg

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None, *,
             thread: Msg | None = None, broadcast: bool = False,
             on_done: Callable[[Msg], None] | None = None) -> Msg:
        """Queue `chat.postMessage`; `on_done(msg)` runs once it is posted (`msg.ts`) or failed (`msg.failed`)."""
        msg = Msg(channel)
        msg.root = thread.root or thread if thread is not None else None
        with self._cond:
            self._lane(channel).posts.append(_Post(msg, text, blocks, thread, broadcast, on_done))
            self._cond.notify_all()
        return msg

    def edit(self, msg: Msg, text: str, blocks: list[dict[str, Any]] | None = None, *, final: bool = False) -> None:
        """Queue `chat.update` of `msg`, replacing any edit of it not sent yet."""
        with self._cond:
            if msg.failed or (msg.final and not final):
                return
            msg.final |= final
            self._lane(msg.channel).edits[msg] = _Edit(text, blocks, final)
            self._cond.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued was sent (True) or `timeout` passed (False). The timeout is real time:
        it bounds the wait for the sending threads, whatever clock the throttling runs on."""
        end = time.monotonic() + timeout
        with self._cond:
            while any(lane.busy or lane.posts or lane.edits for lane in self._lanes.values()):
                if not self._cond.wait(max(0.0, min(0.05, end - time.monotonic()))) and time.monotonic() >= end:
                    return False
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to `timeout`), then stop."""
        self.drain(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False)

    def _lane(self, channel: str) -> _Lane:
        lane = self._lanes.get(channel)
        if lane is None:
            lane = self._lanes[channel] = _Lane()
        return lane

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                now = self.clock.monotonic()
                wake = None  # the earliest time a throttled job is due
                for channel, lane in list(self._lanes.items()):
                    if lane.busy:
                        continue
                    job, at = self._next_job(lane, now)
                    if job is not None:
                        lane.busy = True
                        try:
                            self._pool.submit(self._run, lane, job)
                        except RuntimeError:  # the interpreter is exiting: nothing more can be sent
                            self._closed = True
                            return
                    elif at is not None:
                        wake = at if wake is None else min(wake, at)
                    elif not lane.posts and not lane.edits and now >= lane.next_post:
                        del self._lanes[channel]
                if wake is None:
                    self._cond.wait(30.0)  # nothing is due later: wait to be told of new work
                else:
                    self.clock.wait(self._cond, max(0.001, min(wake - now, 30.0)))

    def _next_job(self, lane: _Lane, now: float) -> tuple[Any, float | None]:
        if now < lane.blocked_until:
            return None, lane.blocked_until
        wakes = []
        if lane.posts:
            if now >= lane.next_post:
                return lane.posts.popleft(), None
            wakes.append(lane.next_post)
        for msg, edit in list(lane.edits.items()):
            if msg.ts is None:
                if msg.done.is_set():  # never posted: nothing to edit
                    del lane.edits[msg]
                continue
            due = max(msg.edited_at + (0.0 if edit.final else self.edit_interval), self._update_slot(now))
            if due <= now:
                del lane.edits[msg]
                return (msg, edit), None
            wakes.append(due)
        return None, min(wakes) if wakes else None

    def _update_slot(self, now: float) -> float:
        """When the next chat.update fits the per-minute budget (Tier 3)."""
        while self._updates and self._updates[0] <= now - 60:
            self._updates.popleft()
        return now if len(self._updates) < self.updates_per_minute else self._updates[0] + 60

    def _run(self, lane: _Lane, job: Any) -> None:
        try:
            if isinstance(job, _Post):
                self._send_post(lane, job)
            else:
                self._send_edit(lane, *job)
        except Exception:  # noqa: BLE001 - the sender must survive anything; the operation never depends on it
            log.exception("sending to Slack failed")
        finally:
            with self._cond:
                lane.busy = False
                self._cond.notify_all()

    def _send_post(self, lane: _Lane, job: _Post) -> None:
        kwargs: dict[str, Any] = {"channel": job.msg.channel, "text": job.text, "unfurl_links": False,
                                  "unfurl_media": False}
        if job.blocks:
            kwargs["blocks"] = job.blocks
        if job.thread is not None:
            if not job.thread.ts:
                return self._posted(job, None)  # the parent was never posted
            kwargs.update(thread_ts=job.thread.ts, reply_broadcast=job.broadcast or None)
        try:
            ts = self.client.chat_postMessage(**kwargs).get("ts")
        except Exception as exc:  # noqa: BLE001 - Slack errors are logged; the operation goes on
            if self._paused(lane, exc, job):
                return None
            log.warning("chat.postMessage to %s failed: %s", job.msg.channel, error_text(exc))
            ts = None
        finally:
            with self._cond:
                lane.next_post = self.clock.monotonic() + self.post_interval
        return self._posted(job, ts)

    def _posted(self, job: _Post, ts: str | None) -> None:
        with self._cond:
            job.msg.ts, job.msg.failed = ts, not ts
            if ts:
                self._known[(job.msg.channel, ts)] = job.msg
            job.msg.done.set()
            self._cond.notify_all()
        if job.on_done is not None:
            try:
                job.on_done(job.msg)
            except Exception:  # noqa: BLE001 - a callback must not stop the sender
                log.exception("after posting to Slack")

    def _send_edit(self, lane: _Lane, msg: Msg, edit: _Edit) -> None:
        with self._cond:
            self._updates.append(self.clock.monotonic())
        try:
            self.client.chat_update(channel=msg.channel, ts=msg.ts or "", text=edit.text, blocks=edit.blocks or [])
        except Exception as exc:  # noqa: BLE001 - see _send_post
            if not self._paused(lane, exc, (msg, edit)):
                log.warning("chat.update of %s in %s failed: %s", msg.ts, msg.channel, error_text(exc))
        finally:
            msg.edited_at = self.clock.monotonic()

    def _paused(self, lane: _Lane, exc: Exception, job: Any) -> bool:
        """On a rate-limit answer, pause the channel for Retry-After and put the job back (True)."""
        if not isinstance(exc, SlackApiError):
            return False
        resp = exc.response
        if resp.status_code != 429 and resp.get("error") != "ratelimited":
            return False
        item = job if isinstance(job, _Post) else job[1]
        item.tries += 1
        if item.tries >= self.max_tries:
            return False
        headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
        wait = float(headers.get("retry-after", 1) or 1)
        channel = job.msg.channel if isinstance(job, _Post) else job[0].channel
        log.info("Slack rate limit in %s; pausing it for %.0f s", channel, wait)
        with self._cond:
            lane.blocked_until = self.clock.monotonic() + wait
            if isinstance(job, _Post):
                lane.posts.appendleft(job)
            else:
                lane.edits.setdefault(job[0], job[1])  # unless a newer edit is already waiting
            self._cond.notify_all()
        return True
