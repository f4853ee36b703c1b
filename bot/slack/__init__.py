"""The Slack front end: `/cfy` and its buttons on Bolt, progress threads, gate cards, HTTP and Socket Mode.

Every listener acknowledges at once and hands the work to the bot's own thread pools (never Bolt's
5-thread listener pool). Everything sent to Slack goes through one throttled `Outbox`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.slack import render
from bot.core import Actor, Invocation, ProgressEvent, Reply
from bot.errors import BotError, ConfigError, UsageError
from bot.parser import parse

log = logging.getLogger("cfy_bot.slack")
OP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RUN_BUTTON = re.compile(r"^cfy_run_\d+$")  # a reply's own buttons: the value is a command, run as the clicker
ALL_STATES = ("pending", "approved", "running", "succeeded", "failed", "cancelled", "expired")
HOUSEKEEPING_S = 30.0


def _retry_handlers() -> list[Any]:
    return [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)]


def make_client(settings: Any) -> WebClient:
    """The Web API client: SLACK_API_URL as base URL, connection errors and 429s retried."""
    kwargs: dict[str, Any] = {"token": settings.slack_bot_token or None, "retry_handlers": _retry_handlers()}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url.rstrip("/") + "/"
    return WebClient(**kwargs)


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return f"{type(exc).__name__}: {exc}"


# -- the throttled outbox ------------------------------------------------------------------------

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
    budget, and a channel paused for Retry-After when Slack still answers 429 after the client's own retries."""

    def __init__(self, client: WebClient, *, post_interval: float = 1.0, edit_interval: float = 3.0,
                 updates_per_minute: int = 50, workers: int = 4, max_tries: int = 5) -> None:
        self.client = client
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
        """Wait until everything queued was sent (True) or `timeout` passed (False)."""
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
                now = time.monotonic()
                wake = now + 30.0
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
                        wake = min(wake, at)
                    elif not lane.posts and not lane.edits and now >= lane.next_post:
                        del self._lanes[channel]
                self._cond.wait(max(0.001, wake - now))

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
            log.warning("chat.postMessage to %s failed: %s", job.msg.channel, _error(exc))
            ts = None
        finally:
            with self._cond:
                lane.next_post = time.monotonic() + self.post_interval
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
            self._updates.append(time.monotonic())
        try:
            self.client.chat_update(channel=msg.channel, ts=msg.ts, text=edit.text, blocks=edit.blocks or [])
        except Exception as exc:  # noqa: BLE001 - see _send_post
            if not self._paused(lane, exc, (msg, edit)):
                log.warning("chat.update of %s in %s failed: %s", msg.ts, msg.channel, _error(exc))
        finally:
            msg.edited_at = time.monotonic()

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
            lane.blocked_until = time.monotonic() + wait
            if isinstance(job, _Post):
                lane.posts.appendleft(job)
            else:
                lane.edits.setdefault(job[0], job[1])  # unless a newer edit is already waiting
            self._cond.notify_all()
        return True


# -- progress of one operation ---------------------------------------------------------------------

class SlackSink:
    """Progress of operations into Slack: the parent card edited in place, one thread reply per step."""

    def __init__(self, front: SlackFront, channel: str, parent: Msg | None = None) -> None:
        self.front, self.channel, self.parent = front, channel, parent
        self.started = False

    def emit(self, event: ProgressEvent) -> None:
        """Show one event; a Slack problem never reaches the operation."""
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - progress display must not break the operation
            log.exception("progress of %s not shown in Slack", event.op_id)

    def _emit(self, event: ProgressEvent) -> None:
        if event.kind == "gate":
            self._followup(event)  # the operation's own card is drawn from the outcome
            return
        op = self.front.services.store.get_operation(event.op_id)
        if op is None:
            return  # a quick command's progress: its reply says it all
        self.started |= event.kind == "started"
        step = event.text if event.kind in ("started", "step") else ""
        parent = self.parent or self.front.card_of(op)
        if parent is None:
            parent = self.front.post_card(op, step=step)
        else:
            self.front.edit_card(parent, op, step=step)
        self.parent = parent
        if event.kind in ("started", "step"):
            self.front.outbox.post(parent.channel, render.step_text(event), thread=parent.root or parent)

    def _followup(self, event: ProgressEvent) -> None:
        """A running operation opened another one that waits at a gate: its card goes into this thread."""
        other = event.data.get("operation")
        if not other or other == event.op_id:
            return
        op = self.front.services.store.get_operation(other)
        if op is not None and self.front.card_of(op) is None:
            parent = self.parent or self.front.card_of(self.front.services.store.get_operation(event.op_id) or {})
            self.front.post_card(op, thread=(parent.root or parent) if parent else None)


# -- the chat port of incidents (bot/chatport.py) ------------------------------------------------------

class SlackChat:
    """Incident rooms on the Web API: conversations.create/invite (channels:manage), pins.add (pins:write)."""

    name = "slack"
    SCOPES = {"conversations.create": "channels:manage", "conversations.invite": "channels:manage",
              "pins.add": "pins:write"}

    def __init__(self, client: WebClient, outbox: Outbox) -> None:
        self.client, self.outbox = client, outbox

    def _call(self, method: str, call: Callable[[], Any], name: str = "") -> Any:
        from bot.chatport import ChatError, MissingScope, NameTaken

        try:
            return call()
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error == "missing_scope":
                raise MissingScope(str(exc.response.get("needed") or self.SCOPES.get(method, "?")), method) from None
            if error == "name_taken":
                raise NameTaken(f"a channel named {name} exists") from None
            raise ChatError(f"Slack refused {method}: {_error(exc)}") from None
        except OSError as exc:
            raise ChatError(f"Slack could not be reached for {method}: {_error(exc)}") from None

    def create_channel(self, name: str) -> str:
        """A new public channel; the bot is its first member."""
        created = self._call("conversations.create",
                             lambda: self.client.conversations_create(name=name, is_private=False), name)
        return str(created["channel"]["id"])

    def invite(self, channel: str, user: str) -> None:
        """Invite a Slack user (`slack:U…`); being there already is fine."""
        from bot.chatport import ChatError

        if not user.startswith("slack:"):
            return
        try:
            self._call("conversations.invite",
                       lambda: self.client.conversations_invite(channel=channel, users=user.split(":", 1)[1]))
        except ChatError as exc:
            if not any(e in str(exc) for e in ("already_in_channel", "cant_invite_self")):
                raise

    def pin(self, channel: str, ts: str) -> None:
        """Pin a message."""
        self._call("pins.add", lambda: self.client.pins_add(channel=channel, timestamp=ts))

    def post(self, channel: str, reply: Reply, thread: str = "") -> str:
        """Post through the outbox and wait for its ts ('' if Slack refused it)."""
        text, blocks = render.reply_blocks(reply)
        msg = self.outbox.post(channel, text, blocks, thread=self.outbox.message(channel, thread) if thread else None)
        msg.done.wait(30)
        return msg.ts or ""

    def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Redraw a message (coalesced with other edits of it)."""
        text, blocks = render.reply_blocks(reply)
        self.outbox.edit(self.outbox.message(channel, ts), text, blocks)

    def say(self, channel: str, text: str, thread: str = "") -> None:
        """Queue a plain message."""
        self.outbox.post(channel, render.cut(render.esc(text), 39_000),
                         thread=self.outbox.message(channel, thread) if thread else None)

    def link(self, channel: str, ts: str = "") -> str:
        """A channel mention (a thread is named by its channel)."""
        return f"<#{channel}>"


# -- who is in which user group --------------------------------------------------------------------

class SlackGroups:
    """`groups_of(user)` for the policy: cached user-group membership; no groups when Slack will not say."""

    def __init__(self, client: WebClient, wanted: Iterable[str], ttl: float = 300.0, retry: float = 60.0) -> None:
        self.client, self.ttl, self.retry = client, ttl, retry
        self.wanted = {g for g in wanted if g.startswith("S")}
        self._members: dict[str, set[str]] = {}
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self, user_id: str) -> frozenset[str]:
        if not self.wanted:
            return frozenset()  # no grant names a group: never ask Slack
        with self._lock:
            if time.monotonic() >= self._expires:
                self._members, ok = self._load()
                self._expires = time.monotonic() + (self.ttl if ok else self.retry)
            return frozenset(g for g, users in self._members.items() if user_id in users)

    def _load(self) -> tuple[dict[str, set[str]], bool]:
        try:
            groups = self.client.usergroups_list(include_users=True).get("usergroups") or []
            members = {}
            for g in groups:
                if g.get("id") in self.wanted:
                    users = g.get("users")
                    if users is None:
                        users = self.client.usergroups_users_list(usergroup=g["id"]).get("users") or []
                    members[g["id"]] = set(users)
            return members, True
        except Exception as exc:  # noqa: BLE001 - fail closed: no group grants, and say why
            log.error("cannot read Slack user groups (%s): grants to user groups are ignored until this works "
                      "(does the app have the usergroups:read scope?)", _error(exc))
            return {}, False


# -- the front end -----------------------------------------------------------------------------------

class SlackFront:
    """What the listeners hand work to: runs commands and clicks on the bot's pools and shows the results."""

    def __init__(self, services: Any, dispatcher: Any, client: WebClient, work: Executor, outbox: Outbox) -> None:
        self.services, self.dispatcher, self.client = services, dispatcher, client
        self.work, self.outbox = work, outbox
        self.work_size = int(getattr(work, "_max_workers", 0) or 0)
        self.quick = ThreadPoolExecutor(8, thread_name_prefix="cfy-quick")
        self._stop = threading.Event()
        self._working = 0  # jobs given to the work pool and not finished
        self._lock = threading.Lock()

    # listeners call these, right after ack()
    def on_command(self, body: dict[str, Any]) -> None:
        """Queue a `/cfy` command."""
        self._submit(self.quick, self._command, body)

    def on_click(self, body: dict[str, Any], action: str) -> None:
        """Queue a button click (it may run the operation, so it goes to the work pool)."""
        self._submit(self.work, self._click, body, action)

    def on_run_button(self, body: dict[str, Any]) -> None:
        """Queue a reply's button: its value is a command, run exactly as if the clicker had typed it."""
        user = body.get("user") or {}
        action = (body.get("actions") or [{}])[0]
        typed = {"text": str(action.get("value", "")), "user_id": user.get("id", ""),
                 "user_name": user.get("username") or user.get("name") or "",
                 "channel_id": (body.get("channel") or {}).get("id", ""), "response_url": body.get("response_url"),
                 "replace_original": True}
        self._submit(self.quick, self._command, typed)  # authorized like any typed command

    def _submit(self, pool: Executor, fn: Callable[..., None], body: dict[str, Any], *args: Any) -> None:
        counted = pool is self.work
        if counted:
            with self._lock:
                self._working += 1

        def guarded() -> None:
            try:
                fn(body, *args)
            except Exception:  # noqa: BLE001 - a person gets a reference, the log gets the traceback
                ref = uuid.uuid4().hex[:8]
                log.exception("Slack request failed, ref %s", ref)
                self.respond(body.get("response_url", ""), Reply(
                    text=f"Something went wrong (ref `{ref}`); the details are in the bot's log.",
                    title="Internal error", tone="danger", ok=False))
            finally:
                if counted:
                    with self._lock:
                        self._working -= 1

        try:
            pool.submit(guarded)
        except RuntimeError:  # the pool is shut down: the process is stopping
            if counted:
                with self._lock:
                    self._working -= 1
            self.respond(body.get("response_url", ""), Reply(text="The bot is restarting; try again in a minute.",
                                                             title="Unavailable", tone="warning", ok=False))

    # commands
    def _command(self, body: dict[str, Any], long_pool: bool = False) -> None:
        text = render.unescape_command(str(body.get("text", "")))
        if not long_pool and self._long_running(text):
            if self.work_size and self._working >= self.work_size:
                self.respond(str(body.get("response_url", "")), Reply(
                    text=f"The bot is already running {self._working} operations; `{text}` starts as soon as one "
                         "of them finishes.", title="Queued", tone="warning"))
            self._submit(self.work, self._command, body, True)
            return
        user = str(body.get("user_id", ""))
        actor = Actor(f"slack:{user}", str(body.get("user_name") or user), "slack")
        inv = Invocation(text=text, actor=actor, channel=str(body.get("channel_id", "")), transport="slack",
                         received_at=self.services.clock.now())
        sink = SlackSink(self, inv.channel)
        outcome = self.dispatcher.handle(inv, sink)
        if body.get("replace_original") and outcome.reply.actions and outcome.exit_code == 0 and not outcome.gate:
            text, blocks = render.reply_blocks(outcome.reply)  # a checklist redrawn in place of the clicked one
            self.respond_raw(str(body.get("response_url", "")), text, blocks, replace_original=True)
            return
        self._deliver(outcome, sink, str(body.get("response_url", "")))

    def _long_running(self, text: str) -> bool:
        try:
            cmd = parse(text, self.services.registry).command
        except UsageError:
            return False
        return bool(cmd and cmd.long_running)

    def _deliver(self, outcome: Any, sink: SlackSink, url: str) -> None:
        op = outcome.operation
        if outcome.gate and op:
            op = self.services.store.get_operation(op["id"]) or op
            card = sink.parent or self.card_of(op)
            if card is not None:
                self.edit_card(card, op)
            else:
                sink.parent = self.post_card(op, fallback_url=url)
        elif sink.started and sink.parent is not None:
            self._broadcast(outcome.reply, sink.parent, url)
        else:
            self.respond(url, outcome.reply)

    def _broadcast(self, reply: Reply, parent: Msg, url: str) -> None:
        """The final result in the thread and in the channel; privately to the requester if that fails."""
        text, blocks = render.reply_blocks(reply)
        self.outbox.post(parent.channel, text, blocks, thread=parent.root or parent, broadcast=True,
                         on_done=lambda m: None if m.ts else self.respond(url, reply))

    # clicks
    def _click(self, body: dict[str, Any], action: str) -> None:
        user = body.get("user") or {}
        actor = Actor(f"slack:{user.get('id', '')}", str(user.get("username") or user.get("name") or ""), "slack")
        channel = str((body.get("channel") or {}).get("id", ""))
        container = body.get("container") or {}
        url = str(body.get("response_url", ""))
        op_id = str(((body.get("actions") or [{}])[0]).get("value", ""))
        store = self.services.store
        op = store.get_operation(op_id) if OP_ID.fullmatch(op_id) else None
        if op is None:
            self.respond(url, Reply(text=f"There is no operation {render.cut(op_id, 64)!r}.", title="Unknown operation",
                                    tone="warning", ok=False))
            return
        card = self.card_of(op)
        if card is None and container.get("message_ts") and not container.get("is_ephemeral"):
            card = self.outbox.message(channel, str(container["message_ts"]))
            self._remember(op["id"], card)
        if card is not None and container.get("thread_ts") and container["thread_ts"] != card.ts:
            card.root = self.outbox.message(channel, str(container["thread_ts"]))  # a card inside a thread
        sink = SlackSink(self, op["channel"], parent=card)
        outcome = self.dispatcher.decide(op_id, actor, action, sink, channel, "slack")
        current = store.get_operation(op_id) or op
        if container.get("is_ephemeral"):  # a private card (the bot could not post in the channel)
            text, blocks = render.card(current, self._gate_text(current))
            self.respond_raw(url, text, blocks, replace_original=True)
        if sink.parent is not None:
            self.edit_card(sink.parent, current)
        if sink.started and sink.parent is not None:  # it ran, whatever the result: the channel hears it
            self._broadcast(outcome.reply, sink.parent, url)
        elif outcome.exit_code != 0:
            self.respond(url, outcome.reply)  # only the clicker learns why nothing happened

    # the operation card
    def card_of(self, op: dict[str, Any]) -> Msg | None:
        """The operation's parent message, when it was posted and stored."""
        if op.get("slack_channel") and op.get("slack_ts"):
            return self.outbox.message(op["slack_channel"], op["slack_ts"])
        return None

    def post_card(self, op: dict[str, Any], step: str = "", fallback_url: str = "", thread: Msg | None = None
                  ) -> Msg:
        """Post the operation's parent message (or a card in `thread`); its ts is stored with the operation."""
        text, blocks = render.card(op, self._gate_text(op), step)

        def posted(msg: Msg) -> None:
            if msg.ts:
                self._remember(op["id"], msg)
            elif fallback_url:  # the bot may not post here (a DM, a private channel): show it privately
                self.respond_raw(fallback_url, text, blocks)

        thread = thread or self._incident_thread(op["channel"])
        return self.outbox.post(thread.channel if thread else op["channel"], text, blocks, thread=thread,
                                on_done=posted)

    def _incident_thread(self, channel: str) -> Msg | None:
        """The thread of the incident open in `channel` when it runs in a thread (no channels:manage)."""
        from bot import incident

        found = incident.open_in(self.services.store, channel)
        if found and found.get("mode") == "thread" and found.get("thread"):
            return self.outbox.message(channel, found["thread"])
        return None

    def edit_card(self, msg: Msg, op: dict[str, Any], step: str = "") -> None:
        """Redraw the operation's parent message for its current state."""
        text, blocks = render.card(op, self._gate_text(op), step)
        self.outbox.edit(msg, text, blocks, final=render.is_final(op))

    def _gate_text(self, op: dict[str, Any]) -> str:
        if op.get("state") != "pending":
            return ""
        try:
            return self.dispatcher.operations.gate_text(op)
        except (BotError, KeyError, ValueError, IndexError):
            return ""

    def _remember(self, op_id: str, msg: Msg) -> None:
        """Store where the parent message is, so a restart edits the same message."""
        store = self.services.store
        try:
            if hasattr(store, "annotate_operation"):
                store.annotate_operation(op_id, slack_channel=msg.channel, slack_ts=msg.ts)
            else:
                store.update_operation(op_id, ALL_STATES, slack_channel=msg.channel, slack_ts=msg.ts)
        except BotError as exc:
            log.warning("could not store the Slack message of %s: %s", op_id, exc)

    # for other parts of the process (the scheduler's daily summary, alerts)
    def sink(self, channel: str) -> SlackSink:
        """A progress sink that shows operations started outside Slack (a schedule) in `channel`."""
        return SlackSink(self, channel)

    def announce(self, channel: str, reply: Reply) -> Msg:
        """Post a reply as a new message in `channel` (throttled like everything else)."""
        text, blocks = render.reply_blocks(reply)
        return self.outbox.post(channel, text, blocks)

    # private replies
    def respond(self, url: str, reply: Reply) -> None:
        """Answer through a response URL: ephemeral unless the reply is public."""
        text, blocks = render.reply_blocks(reply)
        self.respond_raw(url, text, blocks, response_type="in_channel" if reply.public else "ephemeral")

    def respond_raw(self, url: str, text: str, blocks: list[dict[str, Any]], **extra: Any) -> None:
        """POST a message to a response URL; failures are logged."""
        if not url:
            log.info("no response_url to answer on")
            return
        message = {"text": text, "blocks": blocks, "response_type": "ephemeral", "replace_original": False,
                   **extra}
        try:
            resp = WebhookClient(url, retry_handlers=_retry_handlers()).send_dict(message)
            if resp.status_code != 200:
                log.warning("response_url answered %s: %s", resp.status_code, render.cut(resp.body or "", 200))
        except Exception as exc:  # noqa: BLE001 - a lost private reply is logged, never raised
            log.warning("response_url failed: %s", _error(exc))

    # housekeeping
    def recover(self) -> list[dict[str, Any]]:
        """After a (re)start: mark expired cards, then resume or settle unfinished operations in their threads."""
        expire_cards(self.services, self.client, self.outbox)
        operations = getattr(self.dispatcher, "operations", None)
        if operations is None or not hasattr(operations, "reconcile"):
            return []
        settled = operations.reconcile(
            sink_for=lambda op: SlackSink(self, op["channel"], parent=self.card_of(op)))
        for op in settled:  # the card shows the end state, and the channel hears it, as after any operation
            op = self.services.store.get_operation(op["id"]) or op
            card = self.card_of(op)
            if card is not None:
                self.edit_card(card, op)
                if render.is_final(op):
                    text = op.get("error") or (op.get("result") or {}).get("text") or op["state"]
                    self._broadcast(Reply(text=text, title=f"{op['kind']} on {op['manager']}: {op['state']}",
                                          tone="good" if op["state"] == "succeeded" else "danger"), card, "")
        return settled

    def start_housekeeping(self, interval: float = HOUSEKEEPING_S) -> threading.Thread:
        """Recover once, then every `interval` seconds edit the cards of operations whose gate expired."""
        def loop() -> None:
            try:
                self.recover()
            except Exception:  # noqa: BLE001 - serving goes on; the log says what could not be recovered
                log.exception("recovering unfinished operations failed")
            while not self._stop.wait(interval):
                try:
                    expire_cards(self.services, self.client, self.outbox)
                except Exception:  # noqa: BLE001 - try again next round
                    log.exception("expiring gate cards failed")

        thread = threading.Thread(target=loop, name="cfy-housekeeping", daemon=True)
        thread.start()
        return thread

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Is the store readable and the outbox alive?"""
        try:
            self.services.store.get_operation("health-check")
            store_ok = True
        except BotError:
            store_ok = False
        outbox_ok = self.outbox._thread.is_alive()
        return store_ok and outbox_ok, {"store": store_ok, "outbox": outbox_ok}

    def close(self) -> None:
        """Stop the pools and send what is queued."""
        self._stop.set()
        self.quick.shutdown(wait=False)
        self.work.shutdown(wait=False)
        self.outbox.close()


def expire_cards(services: Any, client: WebClient, outbox: Outbox | None = None) -> int:
    """Expire gates whose time is up and edit their cards to say so; returns how many expired."""
    from bot.operations import Operations

    expired = Operations(services).expire_due()
    for op in expired:
        if not (op.get("slack_channel") and op.get("slack_ts")):
            continue
        text, blocks = render.card(op)
        if outbox is not None:
            outbox.edit(outbox.message(op["slack_channel"], op["slack_ts"]), text, blocks, final=True)
            continue
        try:
            client.chat_update(channel=op["slack_channel"], ts=op["slack_ts"], text=text, blocks=blocks)
        except Exception as exc:  # noqa: BLE001 - logged; the operation is expired either way
            log.warning("could not mark the card of %s expired: %s", op["id"], _error(exc))
    return len(expired)


# -- the Bolt app ------------------------------------------------------------------------------------

def build_app(services: Any, dispatcher: Any, *, client: WebClient | None = None, executor: Executor | None = None,
              outbox: Outbox | None = None, socket_mode: bool = False) -> App:
    """The Bolt app: one `/cfy` command and the card buttons; every listener acks at once."""
    settings = services.settings
    secret = settings.slack_signing_secret
    if not secret and not socket_mode:
        raise ConfigError(["SLACK_SIGNING_SECRET is not set (needed to check that requests come from Slack)"])
    client = client or make_client(settings)
    workers = getattr(settings, "slack_workers", 0) or 16
    front = SlackFront(services, dispatcher, client,
                       executor or ThreadPoolExecutor(workers, thread_name_prefix="cfy-work"),
                       outbox or Outbox(client))
    bolt_log = logging.getLogger("cfy_bot.bolt")
    bolt_log.addFilter(_quiet_token_warning)  # Bolt warns when SLACK_BOT_TOKEN is also in the environment
    app = App(client=client, signing_secret=secret or None, request_verification_enabled=bool(secret),
              raise_error_for_unhandled_request=True, name="cfy-bot", logger=bolt_log)
    app.cfy_front = front  # type: ignore[attr-defined]
    services.chat["slack"] = SlackChat(client, front.outbox)  # incidents create their rooms through it

    app.command("/cfy", middleware=[_answered_at_once(front.on_command)])(_acked)
    for action in render.ACTIONS:
        hand_off = _answered_at_once(lambda body, action=action: front.on_click(body, action))
        app.action(f"cfy_{action}", middleware=[hand_off])(_acked)
    app.action(RUN_BUTTON, middleware=[_answered_at_once(front.on_run_button)])(_acked)

    @app.error
    def on_error(error: Exception, request: Any, response: BoltResponse | None) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            log.warning("unhandled Slack request (%s)", _kind(getattr(request, "body", {}) or {}))
            return None
        ref = uuid.uuid4().hex[:8]
        log.error("Slack request failed, ref %s", ref, exc_info=error)
        if response is None:  # already acknowledged
            return None
        return BoltResponse(status=200, body=f":warning: Something went wrong (ref `{ref}`); the details are in "
                                             "the bot's log.")

    return app


def _answered_at_once(hand_off: Callable[[dict[str, Any]], None]) -> Callable[..., BoltResponse]:
    """Listener middleware that hands the request to the bot's pools and acknowledges it right away, on the
    request's own thread: no trip through Bolt's 5-thread listener pool and its 10 ms ack polling."""

    def ack_now(body: dict[str, Any]) -> BoltResponse:
        hand_off(body)
        return BoltResponse(status=200, body="")  # returned without next(): Bolt answers Slack with it

    return ack_now


def _acked(ack: Callable[..., Any]) -> None:
    """The listener behind the middleware; never reached, since the middleware has answered."""
    ack()


def _quiet_token_warning(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()


def front_of(app: App) -> SlackFront:
    """The front end behind an app built by build_app."""
    return app.cfy_front  # type: ignore[attr-defined,no-any-return]


def _kind(body: dict[str, Any]) -> str:
    return str(body.get("type") or body.get("command") or "unknown")[:40]


def wsgi(app: App) -> Callable[..., Any]:
    """`/slack/events` through Bolt's WSGI adapter, and `/health`."""
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    handler = SlackRequestHandler(app)
    front = front_of(app)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/health":
            ok, detail = front.health()
            body = json.dumps({"ok": ok, **detail}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return handler(environ, start_response)

    return application


# -- processes ---------------------------------------------------------------------------------------

def startup_problem(settings: Any, mode: str, client: WebClient | None = None) -> str | None:
    """Why the Slack transport cannot start (one line, never a secret), or None."""
    if not settings.slack_bot_token:
        return "SLACK_BOT_TOKEN is not set (the bot token, xoxb-…, from the app's OAuth & Permissions page)"
    if mode == "http" and not settings.slack_signing_secret:
        return "SLACK_SIGNING_SECRET is not set (Basic Information → App Credentials → Signing Secret)"
    if mode == "socket" and not settings.slack_app_token:
        return "SLACK_APP_TOKEN is not set (an app-level token, xapp-…, with the connections:write scope)"
    if mode == "socket" and not settings.slack_app_token.startswith("xapp-"):
        return "SLACK_APP_TOKEN must be an app-level token (xapp-…), not a bot or user token"
    if os.environ.get("SLACK_CLIENT_ID") and os.environ.get("SLACK_CLIENT_SECRET"):
        return "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are both set: they switch Bolt to OAuth; unset them"
    client = client or make_client(settings)
    try:
        client.auth_test()
    except SlackApiError as exc:
        return f"Slack rejected SLACK_BOT_TOKEN: auth.test answered {_error(exc)}"
    except Exception as exc:  # noqa: BLE001 - any failure to reach Slack stops the start, with its reason
        return f"cannot reach the Slack API at {client.base_url}: {_error(exc)}"
    return None


def build_runtime(settings: Any, *, client: WebClient | None = None, socket_mode: bool = False,
                  transport: Any = None) -> App:
    """Services, dispatcher and app for a serving process, with user groups read from Slack."""
    from bot.app import build_services
    from bot.dispatch import Dispatcher

    client = client or make_client(settings)
    groups = SlackGroups(client, [g.principal for g in settings.grants])
    services = build_services(settings, groups_of=groups, transport=transport)
    dispatcher = Dispatcher(services)
    app = build_app(services, dispatcher, client=client, socket_mode=socket_mode)
    front = front_of(app)
    front.start_housekeeping()
    from bot.schedule import start_scheduler

    channel = settings.summary_channel
    start_scheduler(services, SlackNotifier(front), front._stop, dispatcher=dispatcher,
                    sink=front.sink(channel) if channel else None)
    return app


class SlackNotifier:
    """The scheduler's summaries and alerts as channel messages (bot.notify.Notifier); never raises."""

    def __init__(self, front: Any) -> None:
        self.front = front

    def post(self, channel: str, reply: Reply) -> None:
        """Post the daily summary."""
        self._send(channel, reply)

    def alert(self, channel: str, reply: Reply) -> None:
        """Post an alert (a failed or missed backup) where people look first."""
        self._send(channel, reply)

    def _send(self, channel: str, reply: Reply) -> None:
        if not channel:
            log.warning("no BOT_SUMMARY_CHANNEL/BOT_ALERT_CHANNEL: not posted: %s", reply.title)
            return
        self.front.announce(channel, reply)


def _refuse(problem: str) -> int:
    print(f"cfy-bot cannot start: {problem}", file=sys.stderr)
    return 2


def serve_http(settings: Any, port: int, threads: int, *, transport: Any = None) -> int:
    """`cfy-bot http`: /slack/events and /health under gunicorn (1 worker, `threads` threads); `transport`
    reaches in-process simulated managers (the ack benchmark)."""
    from gunicorn.app.base import BaseApplication

    problem = startup_problem(settings, "http")
    if problem:
        return _refuse(problem)

    apps: list[App] = []

    def worker_exit(_server: Any, _worker: Any) -> None:
        for app in apps:
            front_of(app).close()  # send what is queued; operations resume from the store after a restart

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"0.0.0.0:{port}", "workers": 1, "threads": max(threads, 2),
                               "worker_class": "gthread", "timeout": 60, "graceful_timeout": 20,
                               "control_socket_disable": True, "worker_exit": worker_exit}.items():
                if key in self.cfg.settings:  # control_socket_disable exists from gunicorn 25 on
                    self.cfg.set(key, value)

        def load(self) -> Callable[..., Any]:
            apps.append(build_runtime(settings, transport=transport))  # in the worker: its threads start there
            return wsgi(apps[-1])

    Server().run()
    return 0


def serve_socket(settings: Any) -> int:
    """`cfy-bot socket`: Socket Mode with SLACK_APP_TOKEN; logs when the connection is down."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    problem = startup_problem(settings, "socket")
    if problem:
        return _refuse(problem)
    app = build_runtime(settings, socket_mode=True)
    handler = SocketModeHandler(app, settings.slack_app_token)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        handler.connect()
    except SlackApiError as exc:
        return _refuse(f"Slack rejected SLACK_APP_TOKEN: apps.connections.open answered {_error(exc)}")
    print("cfy-bot: connected to Slack in Socket Mode", file=sys.stderr, flush=True)
    while not stop.wait(HOUSEKEEPING_S):
        if not handler.client.is_connected():
            log.warning("Socket Mode connection is down; the client is reconnecting")
    handler.close()
    front_of(app).close()
    return 0
