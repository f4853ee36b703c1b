"""Deleting the newest verified copy names what `restore latest` then means, or says nothing is left; a copy
that failed its check is listed as FAILED; `status` is not OK without a verified backup (QA s13 #10)."""

from __future__ import annotations


def _two_copies(bot):
    for sid in ("qa-old", "qa-new"):
        code, out = bot.run(f"snapshots create {sid}", yes=True)
        assert code == 0, out
        bot.clock.advance(60)


def _damage(bot, sid: str) -> None:
    copy = bot.store.get_copy("production", sid)
    with open(copy.location, "r+b") as fh:
        fh.seek(copy.size // 2)
        byte = fh.read(1)
        fh.seek(copy.size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_the_card_names_the_next_verified_copy(make_bot) -> None:
    bot = make_bot(seed=False)
    _two_copies(bot)
    code, out = bot.run("snapshots delete qa-new --archive")  # no --yes: the card is shown, nothing deleted
    assert "`restore latest` will then mean qa-old." in out, out


def test_the_only_verified_copy_says_latest_will_refuse_and_status_warns(make_bot) -> None:
    bot = make_bot(seed=False)
    _two_copies(bot)
    _damage(bot, "qa-new")
    code, out = bot.run("backups verify")
    assert code == 1
    code, out = bot.run("snapshots delete qa-old --archive", yes=True)
    assert code == 0, out
    assert "It is the only verified copy of production: `restore latest` will then refuse" in out
    assert "will then mean an older one" not in out
    code, out = bot.run("snapshots list")
    row = next(line for line in out.splitlines() if line.startswith("qa-new"))
    assert "FAILED check (damaged)" in row and "unverified" not in row
    code, out = bot.run("status")
    assert "last verified backup: none in the archive" in out
    assert out.startswith("WARNING") or "⚠" in out.splitlines()[0], out
    code, out = bot.run("restore latest -f", yes=True)
    assert code == 1 and "no verified archive copy" in out
