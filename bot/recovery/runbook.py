"""Recovery runbooks as live checklists: texts from data files (`bot/recovery/runbooks/*.toml`), state in store marks.

A runbook file holds the guide's procedure for one scenario; an operator adapts it by putting a file of the
same name in `<BOT_DATA_DIR>/runbooks/`, which wins over the packaged one. A run copies the steps when it
starts, so a file edited later never shifts the steps of a checklist in progress. Who marked a step done
or skipped, and when, is a mark (`runbook-step:RUN:N`) set only once: the first click wins.
"""

from __future__ import annotations

import json
import re
import secrets
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the context names this module's types, so it imports this module
    from bot.engine.context import Catalog

PACKAGED = Path(__file__).with_name("runbooks")
SCENARIOS = ("cluster-down", "node-down", "active-node-down", "split-brain")
STEP_STATES = ("done", "skipped")
# A runbook's name is a file name directly inside a runbook folder: no separators, dots, or anything a path
# could use to leave the folder, and short enough for any file system.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}", re.ASCII)


class RunbookError(ValueError):
    """A runbook file that cannot be used, or a run or step that does not exist."""


@dataclass(frozen=True)
class Step:
    """One step: the guide's text, the bot's hint, and optionally a command that does it."""

    number: int
    text: str
    hint: str = ""
    action: str = ""
    action_label: str = ""


@dataclass(frozen=True)
class Runbook:
    """A scenario's procedure."""

    scenario: str
    title: str
    steps: tuple[Step, ...]
    when: str = ""
    effect: str = ""
    source: str = ""
    path: str = ""


def runbook_dirs(data_dir: str = "") -> list[Path]:
    """Where runbook files are looked up, the operator's folder first."""
    return ([Path(data_dir) / "runbooks"] if data_dir else []) + [PACKAGED]


def _files(folder: Path) -> dict[str, Path]:
    """The runbook files directly inside `folder` (regular files, not links out of it), by name."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in folder.glob("*.toml"):
        if NAME.fullmatch(path.stem) and path.is_file() and not path.is_symlink():
            out[path.stem] = path
    return out


def available(data_dir: str = "") -> list[str]:
    """Every scenario that has a runbook file: the guide's four, plus any an operator added."""
    found = {name for d in runbook_dirs(data_dir) for name in _files(d)}
    return [s for s in SCENARIOS if s in found] + sorted(found - set(SCENARIOS))


def load(scenario: str, data_dir: str = "") -> Runbook:
    """The runbook of `scenario`; RunbookError when there is none or it is malformed.

    Only the names `available` lists are looked up, so a name never becomes a path of its own choosing
    (`../../etc/x`), and the refusal is the same whether or not such a file exists anywhere.
    """
    if NAME.fullmatch(scenario or ""):
        for folder in runbook_dirs(data_dir):
            path = _files(folder).get(scenario)
            if path is not None:
                return parse_file(path)
    shown = repr(scenario) if NAME.fullmatch(scenario or "") else "by that name"
    raise RunbookError(f"no runbook {shown}; there are: {', '.join(available(data_dir))} "
                       "(a runbook is a NAME.toml file directly in the runbooks folder)")


def parse_file(path: Path) -> Runbook:
    """Read and check one runbook file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RunbookError(f"runbook file {path} cannot be read: {exc}") from None
    return parse(data, path.stem, str(path))


def parse(data: dict[str, Any], name: str, where: str = "") -> Runbook:
    """A runbook from the parsed TOML of a file named `name`."""
    where = where or name
    steps = data.get("steps")
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise RunbookError(f"{where}: `title` must be a non-empty string")
    if data.get("scenario", name) != name:
        raise RunbookError(f"{where}: scenario {data.get('scenario')!r} does not match the file name {name!r}")
    if not isinstance(steps, list) or not steps:
        raise RunbookError(f"{where}: needs at least one [[steps]] table")
    out = []
    for i, raw in enumerate(steps, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str) or not raw["text"].strip():
            raise RunbookError(f"{where}: step {i} needs a `text`")
        unknown = set(raw) - {"text", "hint", "action", "action_label"}
        if unknown:
            raise RunbookError(f"{where}: step {i} has unknown keys: {', '.join(sorted(unknown))}")
        action = str(raw.get("action", "")).strip()
        out.append(Step(i, raw["text"].strip(), str(raw.get("hint", "")).strip(), action,
                        str(raw.get("action_label", "")).strip() or (f"Run `{action}`" if action else "")))
    return Runbook(name, data["title"].strip(), tuple(out), str(data.get("when", "")).strip(),
                   str(data.get("effect", "")).strip(), str(data.get("source", "")).strip(), where)


# --- runs: the checklist state, kept in store marks ---------------------------------------------------

def start_run(store: Any, book: Runbook, *, manager: str, actor: str, actor_name: str, channel: str,
              at: str, incident: str = "") -> dict[str, Any]:
    """Record a new run of `book` (its steps copied) and return it."""
    for _ in range(5):
        run_id = "rb-" + secrets.token_hex(3)
        run = {"id": run_id, "scenario": book.scenario, "title": book.title, "when": book.when,
               "effect": book.effect, "source": book.source, "manager": manager, "started_by": actor,
               "started_by_name": actor_name, "channel": channel, "started_at": at, "incident": incident,
               "steps": [asdict(s) for s in book.steps]}
        if store.claim_mark(f"runbook-run:{run_id}", json.dumps(run)):
            return run
    raise RunbookError("could not pick a free run id")  # pragma: no cover - 16M ids


def get_run(store: Any, run_id: str) -> dict[str, Any]:
    """A run by id; RunbookError when unknown."""
    raw = store.get_mark(f"runbook-run:{run_id}")
    if not raw:
        raise RunbookError(f"there is no runbook run {run_id!r} (its id is in the checklist's title)")
    run: dict[str, Any] = json.loads(raw)
    return run


def steps_of(run: dict[str, Any]) -> list[Step]:
    """The steps a run started with."""
    return [Step(**s) for s in run["steps"]]


def step_of(run: dict[str, Any], number: int) -> Step:
    """One step of a run; RunbookError when out of range."""
    steps = steps_of(run)
    if not 1 <= number <= len(steps):
        raise RunbookError(f"runbook run {run['id']} has steps 1 to {len(steps)}, not {number}")
    return steps[number - 1]


def mark_step(store: Any, run: dict[str, Any], number: int, state: str, *, actor: str, actor_name: str,
              at: str, note: str = "") -> tuple[bool, dict[str, Any]]:
    """Mark a step done or skipped once; (True, record) for the first, (False, existing record) after."""
    if state not in STEP_STATES:
        raise RunbookError(f"a step is marked done or skipped, not {state!r}")
    step_of(run, number)
    record = {"state": state, "by": actor, "by_name": actor_name, "at": at, "note": note}
    key = f"runbook-step:{run['id']}:{number}"
    if store.claim_mark(key, json.dumps(record)):
        return True, record
    return False, json.loads(store.get_mark(key) or "{}")


def record_action(store: Any, run: dict[str, Any], number: int, *, operation_id: str, command: str,
                  actor: str, actor_name: str, at: str) -> None:
    """Remember that a step's action was started (the operation it created, if any)."""
    record = {"operation_id": operation_id, "command": command, "by": actor, "by_name": actor_name, "at": at}
    store.set_mark(f"runbook-action:{run['id']}:{number}", json.dumps(record))


def step_states(store: Any, run: dict[str, Any]) -> list[tuple[Step, dict[str, Any], dict[str, Any]]]:
    """Each step with its done/skipped record ({} when open) and its action record ({} when none)."""
    out = []
    for step in steps_of(run):
        mark = store.get_mark(f"runbook-step:{run['id']}:{step.number}")
        action = store.get_mark(f"runbook-action:{run['id']}:{step.number}")
        out.append((step, json.loads(mark) if mark else {}, json.loads(action) if action else {}))
    return out


class RunbookChecklists:
    """The `Runbooks` port of bot.engine.context: runbook files, and their runs kept in the catalog's marks."""

    def __init__(self, catalog: Catalog, data_dir: str) -> None:
        self.catalog, self.data_dir = catalog, data_dir

    def load(self, scenario: str) -> Runbook:
        """The runbook of `scenario` (the operator's file first); RunbookError when there is none or it is bad."""
        return load(scenario, self.data_dir)

    def start_run(self, book: Runbook, *, manager: str, actor: str, actor_name: str, channel: str, at: str,
                  incident: str = "") -> dict[str, Any]:
        """Record a new run of `book` (its steps copied) and return it."""
        return start_run(self.catalog, book, manager=manager, actor=actor, actor_name=actor_name, channel=channel,
                         at=at, incident=incident)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run by id; RunbookError when unknown."""
        return get_run(self.catalog, run_id)

    def step_of(self, run: dict[str, Any], number: int) -> Step:
        """One step of a run; RunbookError when out of range."""
        return step_of(run, number)

    def mark_step(self, run: dict[str, Any], number: int, state: str, *, actor: str, actor_name: str, at: str,
                  note: str = "") -> tuple[bool, dict[str, Any]]:
        """Mark a step done or skipped once; (True, record) for the first, (False, existing record) after."""
        return mark_step(self.catalog, run, number, state, actor=actor, actor_name=actor_name, at=at, note=note)

    def record_action(self, run: dict[str, Any], number: int, *, operation_id: str, command: str, actor: str,
                      actor_name: str, at: str) -> None:
        """Remember that a step's action was started (the operation it created, if any)."""
        record_action(self.catalog, run, number, operation_id=operation_id, command=command, actor=actor,
                      actor_name=actor_name, at=at)

    def step_states(self, run: dict[str, Any]) -> list[tuple[Step, dict[str, Any], dict[str, Any]]]:
        """Each step with its done/skipped record ({} when open) and its action record ({} when none)."""
        return step_states(self.catalog, run)
