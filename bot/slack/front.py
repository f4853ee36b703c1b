"""The front end: what the listeners hand work to; commands and clicks run on the bot's own pools."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from datetime import timedelta
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_sdk import WebClient

from bot.core import Actor, Invocation, Operation, Reply, Tone
from bot.errors import BotError, UsageError
from bot.spec.parser import parse
from bot.slack import render
from bot.slack.guard import EVENT_MARK, REPLAY_MEMORY, REQUEST_MARK
from bot.slack.display import SlackDisplay, expire_cards
from bot.slack.mention import mention_request
from bot.slack.outbox import Outbox
from bot.slack.sink import SlackSink

log = logging.getLogger("cfy_bot.slack")
OP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HOUSEKEEPING_S = 30.0
MENTION_MEMORY = timedelta(days=1)  # how long a handled mention is remembered against redelivery


class SlackFront(SlackDisplay):
    """What the listeners hand work to: runs commands and clicks on the bot's pools and shows the results."""

    def __init__(self, services: Any, dispatcher: Any, client: WebClient, work: Executor, outbox: Outbox) -> None:
        super().__init__(services, dispatcher, client, outbox)
        self.work = work
        self.work_size = int(getattr(work, "_max_workers", 0) or 0)
        self.quick = ThreadPoolExecutor(8, thread_name_prefix="cfy-quick")
        self._stop = threading.Event()
        self._working = 0  # jobs given to the work pool and not finished
        self._jobs = 0  # jobs given to either pool and not finished
        self._lock = threading.Condition()

    # listeners call these, right after ack()
    def on_command(self, body: dict[str, Any]) -> None:
        """Queue a `/cfy` command."""
        self._submit(self.quick, self._command, body)

    def on_click(self, body: dict[str, Any], action: str) -> None:
        """Queue a button click (it may run the operation, so it goes to the work pool)."""
        self._submit(self.work, self._click, body, action)

    def on_mention(self, body: dict[str, Any]) -> None:
        """Queue `@cfy-bot COMMAND` as `/cfy COMMAND`; a bot's mention, an edit and a repeated delivery do nothing."""
        request = mention_request(body)
        if request is not None:
            self._submit(self.quick, self._mention, request)

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
        self._count(1, counted)

        def guarded() -> None:
            try:
                fn(body, *args)
            except Exception:  # noqa: BLE001 - a person gets a reference, the log gets the traceback
                ref = uuid.uuid4().hex[:8]
                log.exception("Slack request failed, ref %s", ref)
                self.answer(body, Reply(
                    text=f"Something went wrong (ref `{ref}`); the details are in the bot's log.",
                    title="Internal error", tone=Tone.DANGER, ok=False))
            finally:
                self._count(-1, counted)

        try:
            pool.submit(guarded)
        except RuntimeError:  # the pool is shut down: the process is stopping
            self._count(-1, counted)
            self.answer(body, Reply(text="The bot is restarting; try again in a minute.", title="Unavailable",
                                    tone=Tone.WARNING, ok=False))

    def _count(self, step: int, work: bool) -> None:
        with self._lock:
            self._jobs += step
            self._working += step if work else 0
            self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no command, click or operation runs on the bot's pools (True), or `timeout` passes."""
        with self._lock:
            return self._lock.wait_for(lambda: self._jobs == 0, timeout)

    # commands
    def _command(self, body: dict[str, Any], long_pool: bool = False) -> None:
        text = render.unescape_command(str(body.get("text", "")))
        if not long_pool and self._long_running(text):
            if self.work_size and self._working >= self.work_size:
                self.answer(body, Reply(
                    text=f"The bot is already running {self._working} operations; `{text}` starts as soon as one "
                         "of them finishes.", title="Queued", tone=Tone.WARNING))
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
        self._deliver(outcome, sink, body)

    def _mention(self, request: dict[str, Any]) -> None:
        if not self.services.store.claim_mark(f"slack-mention:{request['key']}"):
            log.info("mention %s was already handled (Slack delivered it again)", request["key"])
            return
        self._command(request)

    def _long_running(self, text: str) -> bool:
        try:
            cmd = parse(text, self.services.registry).command
        except UsageError:
            return False
        return bool(cmd and cmd.long_running)

    def _deliver(self, outcome: Any, sink: SlackSink, body: dict[str, Any]) -> None:
        op, url = outcome.operation, str(body.get("response_url", ""))
        if outcome.gate and op:
            op = self.services.store.get_operation(op.id) or op
            card = sink.parent or self.card_of(op)
            if card is not None:
                self.edit_card(card, op)
            else:
                sink.parent = self.post_card(op, fallback_url=url)
        elif sink.started and sink.parent is not None:
            self._broadcast(outcome.reply, sink.parent, url)
        else:
            self.answer(body, outcome.reply)

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
                                    tone=Tone.WARNING, ok=False))
            return
        card = self.card_of(op)
        if card is None and container.get("message_ts") and not container.get("is_ephemeral"):
            card = self.outbox.message(channel, str(container["message_ts"]))
            self._remember(op.id, card)
        if card is not None and container.get("thread_ts") and container["thread_ts"] != card.ts:
            card.root = self.outbox.message(channel, str(container["thread_ts"]))  # a card inside a thread
        sink = SlackSink(self, op.channel, parent=card)
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

    # for other parts of the process (the scheduler's daily summary, alerts)
    def sink(self, channel: str) -> SlackSink:
        """A progress sink that shows operations started outside Slack (a schedule) in `channel`."""
        return SlackSink(self, channel)

    # housekeeping
    def recover(self) -> list[Operation]:
        """After a (re)start: mark expired cards, then resume or settle unfinished operations in their threads."""
        expire_cards(self.services, self.client, self.outbox, getattr(self.dispatcher, "operations", None))
        operations = getattr(self.dispatcher, "operations", None)
        if operations is None or not hasattr(operations, "reconcile"):
            return []
        settled: list[Operation] = operations.reconcile(
            sink_for=lambda op: SlackSink(self, op.channel, parent=self.card_of(op)))
        for op in settled:  # the card shows the end state, and the channel hears it, as after any operation
            op = self.services.store.get_operation(op.id) or op
            card = self.card_of(op)
            if card is not None:
                self.edit_card(card, op)
                if render.is_final(op):
                    text = op.error or (op.result or {}).get("text") or op.state
                    self._broadcast(Reply(text=text, title=f"{op.kind} on {op.manager}: {op.state}",
                                          tone=Tone.GOOD if op.state == "succeeded" else Tone.DANGER), card, "")
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
                    expire_cards(self.services, self.client, self.outbox, getattr(self.dispatcher, "operations", None))
                    self.forget_old_mentions()
                    self.forget_old_requests()
                except Exception:  # noqa: BLE001 - try again next round
                    log.exception("housekeeping (expiring gate cards, forgetting old mentions) failed")

        thread = threading.Thread(target=loop, name="cfy-housekeeping", daemon=True)
        thread.start()
        return thread

    def forget_old_mentions(self) -> int:
        """Forget the handled-mention marks older than a day (Slack retries a delivery within minutes)."""
        forgotten: int = self.services.store.forget_marks("slack-mention:", self.services.clock.now() - MENTION_MEMORY)
        return forgotten

    def forget_old_requests(self) -> int:
        """Forget the signatures of requests seen more than REPLAY_MEMORY ago (Slack's five-minute window has
        shut on them: the guard refuses them by their timestamp) and the Events API ids seen more than a day ago."""
        now, store = self.services.clock.now(), self.services.store
        forgotten: int = store.forget_marks(REQUEST_MARK, now - REPLAY_MEMORY)
        return forgotten + int(store.forget_marks(EVENT_MARK, now - MENTION_MEMORY))

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
