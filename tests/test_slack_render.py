"""bot/slack/render.py: escaping both ways, Block Kit inside Slack's limits, and the operation card."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import Operation, Reply, Table
from bot.slack.render import (
    BLOCKS_BUDGET,
    MAX_BLOCKS,
    SECTION_MAX,
    card as render_card,
    esc,
    reply_blocks,
    unescape_command,
    when,
)


def test_unescape_undoes_slack_escaping_and_curly_quotes() -> None:
    assert unescape_command("echo &lt;a&gt; &amp;&amp; b") == "echo <a> && b"
    assert unescape_command("incident note \u201cit\u2019s down\u201d") == "incident note \"it's down\""
    assert unescape_command("audit --user <@U123|alice> in <#C9|ops>") == "audit --user U123 in C9"
    assert unescape_command("snapshots upload <https://x.example/a?b=1&amp;c=2|x.example>") == (
        "snapshots upload https://x.example/a?b=1&c=2")
    assert unescape_command("&amp;lt;") == "&lt;"  # unescaped once, not twice


def test_esc_makes_user_and_manager_text_inert() -> None:
    assert esc("<!channel> <!here> <@U1> <http://evil|ok>") == (
        "&lt;!channel&gt; &lt;!here&gt; &lt;@U1&gt; &lt;http://evil|ok&gt;")
    assert "@channel" not in esc("ping @channel and @HERE, @everyone")
    assert esc("a & b") == "a &amp; b"
    assert esc("use <#C0123ABC>") == "use <#C0123ABC>"  # the policy's channel references stay links
    assert esc("<#C1|x>") == "&lt;#C1|x&gt;"


def _sizes(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= MAX_BLOCKS
    assert len(json.dumps(blocks)) <= BLOCKS_BUDGET + 2000  # JSON quoting adds a little to the text budget
    for b in blocks:
        if b["type"] == "section" and "text" in b:
            assert len(b["text"]["text"]) <= SECTION_MAX
        if b["type"] == "section" and "fields" in b:
            assert len(b["fields"]) <= 10 and all(len(f["text"]) <= 2000 for f in b["fields"])
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=20_000), title=st.text(max_size=400),
       fields=st.lists(st.tuples(st.text(max_size=50), st.text(max_size=3000)), max_size=25),
       rows=st.integers(0, 3000), width=st.integers(1, 300))
def test_replies_always_fit_slack_limits(text: str, title: str, fields: list[tuple[str, str]], rows: int,
                                         width: int) -> None:
    table = Table(("id", "what"), tuple((f"r{i}", "x" * width) for i in range(rows))) if rows else None
    fallback, blocks = reply_blocks(Reply(text=text, title=title, fields=tuple(fields), table=table))
    assert len(fallback) <= 3000
    _sizes(blocks)


def test_table_is_a_code_block_paged_and_cut_with_a_note() -> None:
    rows = tuple((f"snap-{i:04d}", "created") for i in range(1000))
    _, blocks = reply_blocks(Reply(text="1000 snapshots", title="Snapshots", table=Table(("id", "status"), rows,
                                                                                          note="2 not archived")))
    code = [b for b in blocks if b["type"] == "section" and b["text"]["text"].startswith("```")]
    assert len(code) >= 2 and all(b["text"]["text"].endswith("```") for b in code)
    assert all(b["text"]["text"].split("\n")[0] == "```id         status" for b in code)  # each page has its head
    note = blocks[-1]["elements"][0]["text"]
    assert "more rows not shown" in note and "2 not archived" in note


def test_small_table_is_whole() -> None:
    _, blocks = reply_blocks(Reply(text="t", table=Table(("a",), (("1",), ("2",)))))
    assert blocks[-1]["text"]["text"] == "```a\n-\n1\n2```"


OP = {"id": "op-abc123", "kind": "snapshots delete", "manager": "production", "requester": "slack:U1",
      "requester_name": "alice", "channel": "C1", "state": "pending", "gate": "confirm",
      "created_at": "2026-11-29T09:00:00.000000Z", "expires_at": "2026-11-29T09:10:00.000000Z"}


def card(row: dict[str, Any], gate_text: str = "", step: str = "") -> tuple[str, list[dict[str, Any]]]:
    """The card of the operation the store builds from this row."""
    return render_card(Operation.from_row(row), gate_text, step)


def _buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_confirm_card_has_a_dialog_on_the_dangerous_button_and_only_the_id_as_value() -> None:
    text, blocks = card(OP, "delete snapshot <!channel> on production")
    buttons = _buttons(blocks)
    assert set(buttons) == {"cfy_confirm", "cfy_cancel"}
    assert {b["value"] for b in buttons.values()} == {"op-abc123"}
    assert buttons["cfy_confirm"]["style"] == "danger" and buttons["cfy_confirm"]["confirm"]["style"] == "danger"
    assert "confirm" not in buttons["cfy_cancel"]
    assert "<!channel>" not in json.dumps(blocks).replace("<!date", "")
    assert "requested by <@U1>" in json.dumps(blocks) and text == "Confirm: snapshots delete on production"


def test_approval_card_and_decisions_with_times() -> None:
    op = {**OP, "gate": "approve", "confirmed_by": "slack:U1", "confirmed_at": "2026-11-29T09:01:00.000000Z"}
    _, blocks = card(op, "restore")
    assert set(_buttons(blocks)) == {"cfy_approve", "cfy_reject"}
    assert "confirmed by <@U1> <!date^1795942860^{date_short} {time}|2026-11-29 09:01 UTC>" in json.dumps(blocks)


def test_final_cards_have_no_buttons() -> None:
    for state, extra, word in (("succeeded", {"result": {"text": "deleted"}}, "deleted"),
                               ("failed", {"error": "manager said <no>"}, "manager said &lt;no&gt;"),
                               ("cancelled", {"decided_by": "slack:U2"}, "cancelled by <@U2>"),
                               ("expired", {"finished_at": "2026-11-29T09:10:00.000000Z"}, "expired")):
        text, blocks = card({**OP, "state": state, "gate": "", **extra})
        assert not _buttons(blocks) and state in text and word in json.dumps(blocks)


def test_running_card_offers_cancel_until_the_point_of_no_return() -> None:
    running = {**OP, "state": "running", "gate": "", "step": "uploading"}
    assert set(_buttons(card(running)[1])) == {"cfy_cancel"}
    assert "uploading" in json.dumps(card(running)[1])
    assert not _buttons(card({**running, "point_of_no_return": True})[1])
    assert "now this" in json.dumps(card(running, step="now this")[1])


def test_when_formats_for_each_reader_with_a_utc_fallback() -> None:
    assert when("2026-11-29T09:01:00.000000Z", fallback_only=True) == "2026-11-29 09:01 UTC"
    assert when("") == "" and when("garbage<") == "garbage&lt;"
