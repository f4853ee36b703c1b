"""QA finding 24: the legacy restore's report names the execution schedules a 6.0+ restore re-created
(`<workflow>_restored_…`), read back from the manager, a line each per tenant and deployment in one message."""

from __future__ import annotations

from test_restore_summary import restored_schedules, row, summary


def test_the_report_names_the_schedules_the_restore_re_created(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run("restore weekly-20261119 -f", yes=True, approver="bob")
    assert code == 0, out
    made = restored_schedules(bot)
    assert len(made) == 3  # the snapshot's 4 scheduled executions: 1 overdue, 3 due later
    assert row("scheduled executions", "none were scheduled before; 4 from the snapshot's data marked FAILED by the "
               "restore (1 overdue, 3 due later); re-created as execution schedules: "
               + ", ".join(s["id"] for s in made)) in summary(out, "OK Restore of production succeeded")
    lines = [f"execution schedule {s['id']} re-created by the restore, tenant {s['tenant_name']}, deployment "
             f"{s['deployment_id']}: runs {s['workflow_id']} at {s['since']}" for s in made]
    text = out.splitlines()
    start = next(i for i, line in enumerate(text) if line.endswith(lines[0]))
    assert text[start].split("WARNING ", 1)[1] == lines[0] and text[start + 1:start + len(lines)] == lines[1:]
