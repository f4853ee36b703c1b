"""Simulator over real HTTP on 127.0.0.1: chunked uploads, streamed downloads, dropped connections, restarts."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import zipfile
from urllib.parse import urlparse

import pytest

from sim_fixtures import Api, Clock, basic, make_sim, served

HEADERS = {"Authorization": basic("admin", "admin"), "Tenant": "default_tenant", "Content-type": "application/json"}


def _conn(url: str) -> http.client.HTTPConnection:
    parsed = urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)


def _created(sim, clock: Clock, sid: str = "s1") -> None:
    Api(sim).put(f"/snapshots/{sid}", json_body={})
    clock.advance(10)
    sim.advance()


def test_chunked_upload_then_streamed_download(tmp_path) -> None:
    clock = Clock()
    sim = make_sim(clock)
    payload = os.urandom(300_000)
    with served(sim) as url:
        conn = _conn(url)
        chunks = (payload[i:i + 8192] for i in range(0, len(payload), 8192))
        conn.request("PUT", "/api/v3.1/snapshots/up1/archive", body=chunks, headers=HEADERS, encode_chunked=True)
        answer = conn.getresponse()
        assert answer.status == 201 and json.loads(answer.read())["status"] == "uploaded"
        conn.request("GET", "/api/v3.1/snapshots/up1/archive", headers=HEADERS)  # same keep-alive connection
        got = conn.getresponse()
        assert got.status == 200 and int(got.getheader("Content-Length")) == len(payload)
        assert got.getheader("Content-Disposition") == 'attachment; filename="up1.zip"'
        assert got.read() == payload
        conn.close()


def test_json_answers_carry_content_length_and_304_has_no_body() -> None:
    sim = make_sim(Clock())
    with served(sim) as url:
        conn = _conn(url)
        conn.request("GET", "/api/v3.1/snapshots", headers=HEADERS)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200 and int(r.getheader("Content-Length")) == len(body)
        for expected in (200, 304):
            conn.request("POST", "/api/v3.1/maintenance/activate", headers=HEADERS)
            r = conn.getresponse()
            assert r.status == expected
            data = r.read()
        assert data == b""
        conn.close()


def test_download_of_a_real_snapshot_is_a_valid_zip() -> None:
    clock = Clock()
    sim = make_sim(clock)
    _created(sim, clock)
    with served(sim) as url:
        conn = _conn(url)
        conn.request("GET", "/api/v3.1/snapshots/s1/archive", headers=HEADERS)
        r = conn.getresponse()
        data = r.read()
        assert len(data) == int(r.getheader("Content-Length"))
        assert "metadata.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_whole_archives_go_out_with_sendfile_as_nginx_sends_them(monkeypatch) -> None:
    """Less CPU on the serving side (benchmarks share the machine with it), the same bytes, keep-alive kept."""
    calls: list[int] = []
    real = socket.socket.sendfile

    def spy(self, file, offset=0, count=None):
        calls.append(os.fstat(file.fileno()).st_size)
        return real(self, file, offset, count)

    monkeypatch.setattr(socket.socket, "sendfile", spy)
    clock = Clock()
    sim = make_sim(clock)
    _created(sim, clock)
    with served(sim) as url:
        conn = _conn(url)
        for _ in range(2):  # twice on one connection: the first answer left it in step
            conn.request("GET", "/api/v3.1/snapshots/s1/archive", headers=HEADERS)
            r = conn.getresponse()
            data = r.read()
            assert len(data) == int(r.getheader("Content-Length"))
            assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
        conn.close()
    assert calls == [len(data), len(data)]


def test_truncated_download_closes_the_connection_early() -> None:
    clock = Clock()
    sim = make_sim(clock)
    _created(sim, clock)
    sim.faults.truncate_downloads(1000)
    with served(sim) as url:
        conn = _conn(url)
        conn.request("GET", "/api/v3.1/snapshots/s1/archive", headers=HEADERS)
        r = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            r.read()


def test_refused_connection_is_dropped_without_an_answer() -> None:
    sim = make_sim(Clock())
    sim.faults.refuse_connections(count=1)
    with served(sim) as url:
        conn = _conn(url)
        conn.request("GET", "/api/v3.1/status", headers=HEADERS)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            conn.getresponse()
        conn = _conn(url)
        conn.request("GET", "/api/v3.1/status", headers=HEADERS)
        assert conn.getresponse().status == 200


def test_unread_upload_body_does_not_poison_keep_alive() -> None:
    sim = make_sim(Clock())
    with served(sim) as url:
        conn = _conn(url)
        bad = dict(HEADERS, Authorization=basic("admin", "wrong"))
        conn.request("PUT", "/api/v3.1/snapshots/x/archive", body=b"x" * 50_000, headers=bad)
        r = conn.getresponse()
        assert r.status == 401
        r.read()
        conn.request("GET", "/api/v3.1/status", headers=HEADERS)  # the server drained the unread body
        assert conn.getresponse().status == 200


def test_state_and_archives_survive_a_restart(tmp_path) -> None:
    clock = Clock()
    first = make_sim(clock, data_dir=str(tmp_path))
    _created(first, clock, "keep")
    first.set_password("admin", "s3cret")
    first.close()
    again = make_sim(clock, data_dir=str(tmp_path))
    assert again.loaded_from_disk
    api = Api(again)
    assert api.get("/snapshots/keep", auth=("admin", "s3cret")).json()["status"] == "created"
    r = api.get("/snapshots/keep/archive", auth=("admin", "s3cret"))
    assert zipfile.is_zipfile(io.BytesIO(r.body))


def test_upload_by_url_fetches_from_loopback(tmp_path) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    (tmp_path / "snap.zip").write_bytes(b"PK-fetched")
    files = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=files.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        api = Api(make_sim(Clock()))
        source = f"http://127.0.0.1:{files.server_port}/snap.zip"
        r = api.put("/snapshots/fetched/archive", query={"snapshot_archive_url": source})
        assert r.status == 201 and r.json()["status"] == "uploaded"
        assert api.get("/snapshots/fetched/archive").body == b"PK-fetched"
        missing = api.put("/snapshots/m/archive", query={"snapshot_archive_url": source + ".nope"})
        assert missing.status == 400 and missing.json()["message"].startswith(f"Cannot fetch {source}.nope")
        remote = api.put("/snapshots/m/archive", query={"snapshot_archive_url": "http://example.com/x.zip"})
        assert remote.status == 400
    finally:
        files.shutdown()
        files.server_close()
