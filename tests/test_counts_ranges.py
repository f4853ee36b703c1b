"""Counts say `1 row`, not `1 rows`; a size or count of 0 is refused the same way everywhere (QA s13 #17)."""

from __future__ import annotations

import pytest


def test_one_audit_row_is_singular(bot) -> None:
    bot.run("status")
    code, out = bot.run("audit -c status -e invoke")
    assert code == 0 and "1 audit row, newest first" in out and "1 audit rows" not in out


@pytest.mark.parametrize("text, message", [
    ("executions list -s 0", "-s/--pagination-size must be between 1 and 1000, got 0"),
    ("snapshots list -s 0", "--pagination-size must be between 1 and 1000, got 0"),
    ("audit -n 0", "--limit must be between 1 and 200"),
    ("backups summary --hours 0", "--hours must be between 1 and"),
    ("backups schedule -n 0", "-n/--next must be between 1 and 50, got 0"),
    ("backups schedule -n 51", "-n/--next must be between 1 and 50, got 51"),
    ("backups drills -n 0", "-n must be between 1 and 200, got 0"),
])
def test_zero_sizes_and_counts_are_refused_everywhere(bot, text: str, message: str) -> None:
    code, out = bot.run(text)
    assert code == 2 and message in out


def test_unknown_subcommand_lists_each_subcommand_once(bot) -> None:
    code, out = bot.run("backups status")
    assert code == 2 and "try one of:" in out
    listed = out.split("try one of:")[1].split("\n")[0]
    names = [n.strip(" .`") for n in listed.split(",")]
    assert names.count("prune") == 1 and "verify" in names


def test_nothing_to_prune_with_one_backup_is_singular(make_bot) -> None:
    bot = make_bot(seed=False)
    code, out = bot.run("backups run", yes=True)
    assert code == 0, out
    code, out = bot.run("backups prune", yes=True)
    assert code == 0 and "Nothing to prune on production: its one daily backup is within the retention" in out
