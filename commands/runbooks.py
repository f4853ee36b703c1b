"""`runbook SCENARIO`: the guide's failure-recovery procedures as live checklists, and marking their steps.

Each step has Done and Skip (who and when are recorded once: the first answer wins); a step the bot can
do itself offers its command, which runs as whoever asks, through the dispatcher, with that command's own
permission, gate and audit (`runbook do` on cluster-down's last step starts the guided `restore latest`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.engine.context import Ctx, RunbookError, Step
from bot.core import Action, Invocation, ProgressEvent, Reply, Tone
from bot.errors import BotError, NotFound, UsageError
from bot.spec.parser import Args, parse
from bot.spec.registry import Param, command

RUN_ID = Param("run_id", metavar="RUN_ID", required=True, help="the checklist's id (rb-…), shown in its title")
STEP = Param("step", metavar="STEP", kind="int", required=True, help="the step's number")
MARKS = {"done": "[x]", "skipped": "[-]"}


def _run(ctx: Ctx, run_id: str) -> dict[str, Any]:
    try:
        return ctx.runbooks.get_run(run_id)
    except RunbookError as exc:
        raise NotFound(str(exc)) from None


def _step(ctx: Ctx, run: dict[str, Any], number: int) -> Step:
    try:
        return ctx.runbooks.step_of(run, number)
    except RunbookError as exc:
        raise UsageError(str(exc)) from None


def _audit(ctx: Ctx, run: dict[str, Any], event: str, **detail: Any) -> None:
    """An audit row about a run, naming the run's manager (these commands take no -m)."""
    ctx.audit_log.append_audit(event, actor=ctx.inv.actor.id, transport=ctx.inv.transport, channel=ctx.inv.channel,
                       manager=run["manager"], command=ctx.command.name, operation_id=detail.pop("operation_id", ""),
                       detail={"run": run["id"], "scenario": run["scenario"], "incident": run.get("incident", ""),
                               **detail})


def _hhmm(iso: str) -> str:
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def checklist(ctx: Ctx, run: dict[str, Any], headline: str = "") -> Reply:
    """The run as a checklist: each step's state (who, when), with Done/Skip/action buttons on open steps."""
    lines = [headline] if headline else []
    if run.get("when"):
        lines.append(f"When: {run['when']}")
    closed, actions = 0, []
    for step, mark, started in ctx.runbooks.step_states(run):
        n = step.number
        line = f"{n}. {MARKS.get(mark.get('state', ''), '[>]' if started else '[ ]')} {step.text}"
        if mark:
            closed += 1
            line += f" ({mark['state']} by {mark['by_name']}, {_hhmm(mark['at'])}"
            line += f": {mark['note']})" if mark.get("note") else ")"
        if started:
            line += f"\n     {started['by_name']} started `{started['command']}` at {_hhmm(started['at'])}"
            line += _operation_state(ctx, started.get("operation_id", ""))
        if step.hint and not mark:
            line += f"\n     {step.hint}"
        lines.append(line)
        if not mark:
            actions += [Action(f"Done {n}", f"runbook done {run['id']} {n}", "primary", str(n)),
                        Action(f"Skip {n}", f"runbook skip {run['id']} {n}", "", str(n))]
            if step.action:
                actions.append(Action(step.action_label, f"runbook do {run['id']} {n}", "", str(n)))
    total = len(run["steps"])
    if closed == total:
        lines.append(f"All {total} steps are done or skipped. Expected effect: {run.get('effect') or 'recovered'}.")
    else:
        lines.append(f"{closed} of {total} steps done or skipped. Type `runbook done {run['id']} STEP [note]`, "
                     f"`runbook skip {run['id']} STEP [reason]` or `runbook do {run['id']} STEP`"
                     + (", or use the buttons." if ctx.inv.transport == "slack" else "."))
    title = f"Runbook {run['scenario']} on {run['manager']}: {run['title']} ({run['id']})"
    fields = (("manager", run["manager"]), ("started", f"by {run['started_by_name']}, {_hhmm(run['started_at'])}"),
              ("source", run.get("source") or "the guide"))
    tone = Tone.GOOD if closed == total else Tone.WARNING
    return Reply(text="\n".join(lines), title=title, tone=tone, fields=fields, public=True, actions=tuple(actions))


def _operation_state(ctx: Ctx, op_id: str) -> str:
    if not op_id:
        return ""
    op = ctx.engine.get_operation(op_id)
    if op is None:
        return f": operation {op_id}"
    gate = f", waiting for {'approval' if op.gate == 'approve' else 'confirmation'}" \
        if op.state == "pending" else ""
    return f": operation {op_id} is {op.state}{gate}"


@command("runbook", summary="A failure-recovery procedure of the guide as a live checklist", group="incidents",
         permission="operator",
         params=[Param("scenario", metavar="cluster-down|node-down|active-node-down|split-brain", required=True,
                       help="which procedure of the guide's Failure Recovery section")],
         examples=["runbook cluster-down", "runbook node-down -m production", "runbook active-node-down",
                   "runbook split-brain"])
def runbook_start(ctx: Ctx, args: Args) -> Reply:
    """Answer `runbook SCENARIO`: start a checklist."""
    try:
        book = ctx.runbooks.load(args.scenario)
    except RunbookError as exc:
        raise UsageError(str(exc)) from None
    incident = _incident_here(ctx)
    run = ctx.runbooks.start_run(book, manager=ctx.manager_name, actor=ctx.inv.actor.id,
                       actor_name=ctx.inv.actor.name, channel=ctx.inv.channel, at=ctx.now().isoformat(),
                       incident=incident)
    _audit(ctx, run, "runbook_start", title=book.title)
    return checklist(ctx, run, f"{ctx.inv.actor.name} started the runbook “{book.title}” on {ctx.manager_name}.")


def _incident_here(ctx: Ctx) -> str:
    found = ctx.incidents.open_in(ctx.inv.channel)
    return found["id"] if found else ""


def _mark(ctx: Ctx, args: Args, state: str) -> Reply:
    run = _run(ctx, args.run_id)
    _step(ctx, run, args.step)
    first, record = ctx.runbooks.mark_step(run, args.step, state, actor=ctx.inv.actor.id,
                                 actor_name=ctx.inv.actor.name, at=ctx.now().isoformat(), note=args.note or "")
    if not first:
        reply = checklist(ctx, run, f"Step {args.step} was already marked {record.get('state')} by "
                                    f"{record.get('by_name')} at {_hhmm(record.get('at', ''))}; nothing changed.")
        return replace(reply, ok=False, tone=Tone.INFO)
    _audit(ctx, run, "runbook_step", step=args.step, state=state, note=args.note or "",
           text=_step(ctx, run, args.step).text)
    return checklist(ctx, run, f"{ctx.inv.actor.name} marked step {args.step} {state}.")


NOTE = Param("note", metavar="NOTE", rest=True, help="what was done, or why it was skipped")


@command("runbook done", summary="Mark a runbook step done (who and when are recorded)", group="incidents",
         permission="operator", manager_scoped=False, params=[RUN_ID, STEP, NOTE],
         examples=["runbook done rb-3f2a1c 1", "runbook done rb-3f2a1c 2 certificates copied to the vault"])
def runbook_done(ctx: Ctx, args: Args) -> Reply:
    """Answer `runbook done RUN_ID STEP [NOTE]`."""
    return _mark(ctx, args, "done")


@command("runbook skip", summary="Mark a runbook step skipped, with the reason", group="incidents",
         permission="operator", manager_scoped=False, params=[RUN_ID, STEP, NOTE],
         examples=["runbook skip rb-3f2a1c 3 fixed the problem instead"])
def runbook_skip(ctx: Ctx, args: Args) -> Reply:
    """Answer `runbook skip RUN_ID STEP [REASON]`."""
    return _mark(ctx, args, "skipped")


@command("runbook show", summary="Show a runbook checklist and who did which step", group="incidents",
         manager_scoped=False, params=[RUN_ID], examples=["runbook show rb-3f2a1c"])
def runbook_show(ctx: Ctx, args: Args) -> Reply:
    """Answer `runbook show RUN_ID`."""
    return checklist(ctx, _run(ctx, args.run_id))


@command("runbook do", summary="Let the bot do a runbook step (its command runs as you, with its own checks)",
         group="incidents", permission="operator", manager_scoped=False, params=[RUN_ID, STEP],
         examples=["runbook do rb-3f2a1c 5"])
def runbook_do(ctx: Ctx, args: Args) -> Reply:
    """Answer `runbook do RUN_ID STEP`: run the step's command through the dispatcher, as the asker."""
    run = _run(ctx, args.run_id)
    step = _step(ctx, run, args.step)
    if not step.action:
        raise UsageError(f"step {step.number} of {run['id']} is done by people, not by the bot; mark it with "
                         f"`runbook done {run['id']} {step.number}`")
    text = action_text(ctx, step.action, run["manager"])
    inv = Invocation(text=text, actor=ctx.inv.actor, channel=ctx.inv.channel, transport=ctx.inv.transport,
                     received_at=ctx.now())
    outcome = ctx.engine.handle(inv, ctx.sink)  # parse, authorize, gate, audit: as if typed
    op = outcome.operation
    if outcome.exit_code != 0 and op is None:
        return replace(outcome.reply, text=f"Step {step.number} of {run['id']}: `{text}` did not start.\n"
                                           + outcome.reply.text, ok=False)
    op_id = op.id if op is not None else ""
    ctx.runbooks.record_action(run, step.number, operation_id=op_id, command=text,
                     actor=ctx.inv.actor.id, actor_name=ctx.inv.actor.name, at=ctx.now().isoformat())
    _audit(ctx, run, "runbook_step", step=step.number, state="started", command=text, operation_id=op_id)
    if op is None:
        return outcome.reply  # a quick command (e.g. `cluster status`): its answer is the point
    if outcome.gate:  # its card (Confirm / Approve) goes where the checklist is
        ctx.sink.emit(ProgressEvent(ctx.inv.id, "gate", outcome.reply.text, Tone.WARNING, ctx.now(),
                                    {"operation": op.id, "gate": outcome.gate}))
    how = f" Type `confirm {op.id}` to go on." if outcome.gate == "confirm" else ""
    return checklist(ctx, run, f"Step {step.number}: {ctx.inv.actor.name} started `{text}` "
                               f"(operation {op.id}).{how}\n{outcome.reply.text}")


def action_text(ctx: Ctx, action: str, manager: str) -> str:
    """A step's command with the run's manager added when the command takes one."""
    try:
        parsed = parse(action, ctx.registry)
    except BotError as exc:
        raise UsageError(f"the runbook's action `{action}` is not a command: {exc}") from None
    scoped = parsed.command is not None and parsed.command.manager_scoped
    return f"{action} -m {manager}" if scoped and " -m " not in f" {action} " else action
