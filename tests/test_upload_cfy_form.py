"""`snapshots upload` as cfy 7.0.5 spells it (`URL -s/--snapshot-id ID`), beside the bot's `ID [URL]` and
`ID --from-archive`; ambiguous forms are refused with the form to type (QA s13 #22)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_transfer import sim_zip


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_cfy_form_fetches_the_url_as_the_given_id(bot, tmp_path) -> None:
    bot.run("snapshots create url-1 --no-legacy")
    data = sim_zip(bot.sim, "url-1")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "url-1.zip").write_bytes(data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/url-1.zip"
        code, out = bot.run(f"snapshots upload {url} -s cfy-1")
        code2, out2 = bot.run(f"snapshots upload {url} --snapshot-id cfy-2")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0 and f"production fetched {url} as snapshot cfy-1" in out, out
    assert code2 == 0 and "as snapshot cfy-2" in out2, out2
    assert sim_zip(bot.sim, "cfy-1") == data == sim_zip(bot.sim, "cfy-2")


def test_the_bot_s_archive_form_also_takes_the_id_after_s(bot) -> None:
    bot.run("snapshots create arc-1 --no-legacy")
    bot.run("snapshots delete arc-1", yes=True)
    code, out = bot.run("snapshots upload -s arc-1 --from-archive")
    assert code == 0 and "Snapshot arc-1 uploaded to production from its own archive copy" in out, out


@pytest.mark.parametrize("text, message", [
    ("snapshots upload https://example.com/x.zip", "`snapshots upload https://example.com/x.zip -s SNAPSHOT_ID`"),
    ("snapshots upload https://example.com/x.zip -s x-1 --from-archive", "either --from-archive or a URL"),
    ("snapshots upload /tmp/x.zip -s x-1", "looks like a file path: the bot does not read files from its host"),
    ("snapshots upload x-1 -s x-2", "two snapshot ids (x-1 and -s x-2)"),
    ("snapshots upload https://example.com/x.zip x-1", "the id goes after -s, as cfy spells it: "
                                                       "`snapshots upload URL -s x-1`"),
    ("snapshots upload https://example.com/x.zip https://example.com/y.zip", "give one URL"),
    ("snapshots upload x-1 ftp:/nope", "not a URL the manager can fetch"),
    ("snapshots upload", "name the snapshot"),
    ("snapshots upload file:///etc/passwd -s x-1", "not a URL the manager can fetch"),
])
def test_ambiguous_uploads_are_refused_touching_nothing(bot, text: str, message: str) -> None:
    before = set(bot.sim.state.snapshots["default_tenant"])
    code, out = bot.run(text)
    assert code == 2 and message in out, out
    assert set(bot.sim.state.snapshots["default_tenant"]) == before
