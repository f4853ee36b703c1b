"""Runbooks: the data files (they parse, every action is a real command), and the live checklist in the terminal."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.recovery import runbook as rb
from bot.spec.parser import parse
from sim_fixtures import daily

SNAP = f"{daily(1)}"
ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT.parent / "shared" / "seed" / "000_c8591fa008b2b9f0.txt"  # the team's shared docs, beside the project


def run_id(out: str) -> str:
    return "rb-" + out.split("(rb-", 1)[1].split(")", 1)[0]


# --- the data files ------------------------------------------------------------------------------

def test_the_four_scenarios_have_a_packaged_file() -> None:
    assert rb.available() == list(rb.SCENARIOS)
    assert sorted(p.stem for p in rb.PACKAGED.glob("*.toml")) == sorted(rb.SCENARIOS)


@pytest.mark.parametrize("path", sorted(rb.PACKAGED.glob("*.toml")), ids=lambda p: p.stem)
def test_every_data_file_parses_and_every_action_is_a_real_command(path: Path) -> None:
    import commands  # noqa: F401 - registers the commands
    from bot.spec.registry import REGISTRY

    tomllib.loads(path.read_text())  # plain TOML
    book = rb.parse_file(path)
    assert book.scenario == path.stem and book.title and book.steps
    for step in book.steps:
        if step.action:
            parsed = parse(step.action, REGISTRY)
            assert parsed.command is not None and parsed.help_topic is None, step.action
            assert step.action_label
            if parsed.command.manager_scoped:
                assert parse(f"{step.action} -m production", REGISTRY).manager == "production"


def test_the_guides_steps_are_in_the_files_word_for_word() -> None:
    if not GUIDE.exists():
        pytest.skip("the guide is not on this machine")
    guide = " ".join(GUIDE.read_text().split())
    for scenario in ("cluster-down", "node-down"):
        for step in rb.load(scenario).steps:
            assert step.text in guide, step.text
    assert rb.load("cluster-down").steps[-1].action == "restore latest"


def test_an_operator_copy_in_the_data_dir_wins(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "node-down.toml").write_text('title = "Our own node procedure"\n[[steps]]\ntext = "Call Dana."\n')
    (folder / "dc-flood.toml").write_text('title = "Data centre flooded"\n[[steps]]\ntext = "Get out."\n')
    assert rb.load("node-down", str(tmp_path)).title == "Our own node procedure"
    assert rb.load("cluster-down", str(tmp_path)).title == "Whole cluster down or working wrong"
    assert rb.available(str(tmp_path))[-1] == "dc-flood"


@pytest.mark.parametrize("text,problem", [
    ('title = "x"\n', "at least one [[steps]]"),
    ('[[steps]]\ntext = "a"\n', "`title`"),
    ('title = "x"\n[[steps]]\nhint = "no text"\n', "step 1 needs a `text`"),
    ('title = "x"\n[[steps]]\ntext = "a"\nbutton = "?"\n', "unknown keys: button"),
    ('title = "x"\nscenario = "other"\n[[steps]]\ntext = "a"\n', "does not match"),
    ('title = "x\n', "cannot be read"),
])
def test_a_broken_file_is_refused_with_the_reason(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "node-down.toml"
    path.write_text(text)
    with pytest.raises(rb.RunbookError) as info:
        rb.parse_file(path)
    assert problem in str(info.value)


# --- the checklist --------------------------------------------------------------------------------

def test_checklist_done_skip_who_and_when(make_bot) -> None:
    bot = make_bot(env={"BOT_SHELL_ROLE": "operator"})
    code, out = bot.run("runbook node-down")
    assert code == 0, out
    rid = run_id(out)
    assert "Runbook node-down on production: One manager cluster node down" in out
    assert "1. [ ] Remove manager from the cluster." in out and "4. [ ] Join existing cluster." in out
    assert f"→ Done 1: runbook done {rid} 1   Skip 1: runbook skip {rid} 1   Which node is down?: " \
           f"runbook do {rid} 1" in out
    code, out = bot.run(f"runbook done {rid} 1 removed mgr-3", user="alice")
    assert code == 0
    assert "1. [x] Remove manager from the cluster. (done by alice, 2026-11-29 09:00 UTC: removed mgr-3)" in out
    assert f"Done 1: runbook done {rid} 1" not in out and f"Done 2: runbook done {rid} 2" in out
    code, out = bot.run(f"runbook done {rid} 1", user="bob")  # a second click changes nothing
    assert code == 1 and "Step 1 was already marked done by alice" in out
    bot.clock.advance(120)
    code, out = bot.run(f"runbook skip {rid} 2 the VM was already gone", user="bob")
    assert "2. [-] Destroy manager. (skipped by bob, 2026-11-29 09:02 UTC: the VM was already gone)" in out
    bot.run(f"runbook done {rid} 3")
    code, out = bot.run(f"runbook done {rid} 4")
    assert "All 4 steps are done or skipped. Expected effect: Healthy manager cluster." in out
    assert "→" not in out
    code, out = bot.run(f"runbook show {rid}", user="carol")
    assert code == 0 and "4. [x] Join existing cluster." in out
    rows = [r for r in bot.store.query_audit(event="runbook_step", limit=10)]
    assert [(r["actor"], r["detail"]["step"], r["detail"]["state"]) for r in rows[::-1]] == [
        ("shell:alice", 1, "done"), ("shell:bob", 2, "skipped"), ("shell:alice", 3, "done"),
        ("shell:alice", 4, "done")]
    assert all(r["manager"] == "production" for r in rows)


def test_errors_and_permissions(make_bot) -> None:
    bot = make_bot(env={"BOT_SHELL_ROLE": "viewer", "BOT_OPERATORS": "shell:olga"})
    code, out = bot.run("runbook cluster-down")
    assert code == 1 and "operator" in out
    code, out = bot.run("runbook flood", user="olga")
    assert code == 2 and "no runbook 'flood'" in out and "split-brain" in out
    code, out = bot.run("runbook split-brain -m production", user="olga")
    rid = run_id(out)
    assert code == 0 and "7. [ ]" in out
    assert bot.run(f"runbook done {rid} 9", user="olga")[1].count("steps 1 to 7") == 1
    assert "no runbook run 'rb-nope'" in bot.run("runbook done rb-nope 1", user="olga")[1]
    code, out = bot.run(f"runbook do {rid} 2", user="olga")
    assert code == 2 and "done by people" in out
    code, out = bot.run(f"runbook done {rid} 1")  # a viewer may look, not tick
    assert code == 1 and "operator" in out


def test_a_quick_action_answers_with_its_own_reply(make_bot) -> None:
    bot = make_bot(env={"BOT_SHELL_ROLE": "operator"})
    rid = run_id(bot.run("runbook active-node-down")[1])
    code, out = bot.run(f"runbook do {rid} 1")
    assert code == 0 and "Cluster status of production: OK" in out
    out = bot.run(f"runbook show {rid}")[1]
    assert "1. [>] Other healthy manager" in out and "alice started `cluster status -m production`" in out


def test_cluster_down_last_step_starts_the_guided_restore_of_latest(make_bot) -> None:
    bot = make_bot(env={"BOT_ADMINS": "shell:alice,shell:bob", "BOT_OPERATORS": "shell:olga",
                        "BOT_SHELL_ROLE": "viewer"})
    assert bot.run(f"snapshots download {SNAP}")[0] == 0  # a verified archive copy: what `latest` means
    with bot.sim.lock:  # the managers were torn down and installed fresh (steps 1-4): no data, no snapshots
        for tenant in bot.sim.state.tenants:
            bot.sim.state.blueprints[tenant], bot.sim.state.deployments[tenant] = [], []
            bot.sim.state.snapshots[tenant] = {}
        bot.sim.state.executions = {k: e for k, e in bot.sim.state.executions.items() if e["status"] != "scheduled"}
    rid = run_id(bot.run("runbook cluster-down", user="olga")[1])
    code, out = bot.run(f"runbook do {rid} 5", user="olga")  # an operator may not restore
    assert code == 1 and "admin" in out and not [o for o in bot.store.list_operations() if o.kind == "restore"]
    code, out = bot.run(f"runbook do {rid} 5", user="alice")
    assert code == 0, out
    [op] = [o for o in bot.store.list_operations() if o.kind == "restore"]
    assert op.state == "pending" and op.args["snapshot_id"] == SNAP and op.requester == "shell:alice"
    assert op.manager == "production"
    assert f"alice started `restore latest -m production` (operation {op.id})" in out
    assert f"Type `confirm {op.id}`" in out
    assert f"operation {op.id} is pending, waiting for confirmation" in out
    assert bot.run(f"confirm {op.id}", user="alice")[0] == 0
    code, out = bot.run(f"approve {op.id}", user="bob")
    assert code == 0, out
    assert f"uploading {daily(1)} to production from the archive copy" in out
    assert f"Restored {SNAP} on production" in out
    out = bot.run(f"runbook show {rid}")[1]
    assert f"operation {op.id} is succeeded" in out
    invoked = [r["detail"]["text"] for r in bot.store.query_audit(event="invoke", limit=50)]
    assert "restore latest -m production" in invoked  # it went through the dispatcher, as if typed


def test_reply_buttons_in_the_terminal_and_in_slack() -> None:
    from bot.core import Action, Reply
    from bot.front.render import reply_text
    from bot.slack.render import reply_blocks

    actions = (Action("Done 1", "runbook done rb-1 1", "primary", "1"),
               Action("Skip 1", "runbook skip rb-1 1", "", "1"),
               Action("Done 2", "runbook done rb-1 2", "primary", "2"))
    reply = Reply(text="checklist", title="Runbook", actions=actions)
    assert reply_text(reply).endswith("→ Done 1: runbook done rb-1 1   Skip 1: runbook skip rb-1 1\n"
                                      "→ Done 2: runbook done rb-1 2")
    _text, blocks = reply_blocks(reply)
    rows = [b["elements"] for b in blocks if b["type"] == "actions"]
    assert [[(e["action_id"], e["value"], e.get("style")) for e in row] for row in rows] == [
        [("cfy_run_0", "runbook done rb-1 1", "primary"), ("cfy_run_1", "runbook skip rb-1 1", None)],
        [("cfy_run_2", "runbook done rb-1 2", "primary")]]


# --- issue 16: only the named runbooks and files directly inside the override folder load -------------------


def _outside(tmp_path: Any) -> Any:
    """A valid runbook file outside every runbook folder, as an attacker would aim at."""
    target = tmp_path / "elsewhere" / "x.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text('title = "outside"\n[[steps]]\ntext = "pwned"\n')
    return target


@pytest.mark.parametrize("name", ["../../elsewhere/x", "../elsewhere/x", "/abs/x", "x/../../elsewhere/x",
                                  "X", ".hidden", "a" * 65, "a" * 300, "cluster-down\x00", "café"])
def test_a_name_that_is_not_a_runbook_file_name_never_reads_a_path(tmp_path, name: str) -> None:
    from bot.recovery.runbook import RunbookError, load

    _outside(tmp_path)
    data = tmp_path / "data"
    (data / "runbooks").mkdir(parents=True)
    with pytest.raises(RunbookError) as info:
        load(name, str(data))
    assert "no runbook by that name; there are: cluster-down, node-down" in str(info.value)
    assert "elsewhere" not in str(info.value) and "pwned" not in str(info.value)


def test_the_refusal_is_the_same_whether_or_not_the_file_exists(make_bot, tmp_path) -> None:
    bot = make_bot(env={"BOT_OPERATORS": "shell:olga"})
    target = _outside(tmp_path)
    rel = os.path.relpath(target.with_suffix(""), tmp_path / "data" / "runbooks")
    there = bot.run(f"runbook {rel}", user="olga")
    gone = bot.run(f"runbook {rel.replace('x', 'y')}", user="olga")
    assert there[0] == gone[0] == 2 and "pwned" not in there[1] and "outside" not in there[1]
    assert there[1].replace(rel, "") == gone[1].replace(rel.replace("x", "y"), "")


def test_a_link_in_the_override_folder_to_a_file_outside_is_not_loaded(tmp_path) -> None:
    from bot.recovery.runbook import RunbookError, available, load

    data = tmp_path / "data"
    (data / "runbooks").mkdir(parents=True)
    (data / "runbooks" / "flood.toml").symlink_to(_outside(tmp_path))
    assert "flood" not in available(str(data))
    with pytest.raises(RunbookError):
        load("flood", str(data))


def test_an_operator_file_directly_in_the_folder_still_loads(tmp_path) -> None:
    from bot.recovery.runbook import available, load

    data = tmp_path / "data"
    (data / "runbooks").mkdir(parents=True)
    (data / "runbooks" / "flood.toml").write_text('title = "Flood"\n[[steps]]\ntext = "move the racks"\n')
    assert "flood" in available(str(data)) and load("flood", str(data)).title == "Flood"
