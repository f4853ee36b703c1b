"""A truncated archive copy is named by its size first ("0 bytes, 5.8 KiB expected: truncated"), and progress
lines print the file's real size, not the catalog's (QA s13 #14)."""

from __future__ import annotations

from bot.core import size as file_size  # a copy is more than 1 KiB: the same text


def _truncated_copy(bot):
    code, out = bot.run("snapshots create qa1", yes=True)
    assert code == 0, out
    copy = bot.store.get_copy("production", "qa1")
    assert copy is not None and copy.verified and copy.size > 1024
    with open(copy.location, "wb"):
        pass  # `: > qa1.zip`
    return copy


def test_verify_says_truncated_with_both_sizes(make_bot) -> None:
    bot = make_bot(seed=False)
    copy = _truncated_copy(bot)
    code, out = bot.run("backups verify qa1")
    expected = f"it is 0 bytes, {file_size(copy.size)} expected: truncated"
    assert code == 1 and expected in out, out
    assert "1 of 1 archive copy failed the check" in out
    assert f"checking qa1 of production (0 bytes, {file_size(copy.size)} expected)" in out
    assert "not a readable zip file" not in out
    after = bot.store.get_copy("production", "qa1")
    assert not after.verified and after.error == expected


def test_upload_from_archive_shows_the_real_size_and_refuses(make_bot) -> None:
    bot = make_bot(seed=False)
    copy = _truncated_copy(bot)
    bot.run("snapshots delete qa1", yes=True)
    code, out = bot.run("snapshots upload qa1 --from-archive")
    assert code == 1, out
    assert f"checking its own archive copy of qa1 (0 bytes, {file_size(copy.size)} expected)" in out
    assert "0 bytes" in out and "truncated" in out
