"""Hostile HTTP traffic against `cfy-bot http`, next to a bare Bolt app under the same server, in one run.

    python benchmarks/http_abuse.py [--size-mib 1024] [--slow 100] [--probes 100] [--threads 8] [--no-gunicorn]

Everything is on 127.0.0.1: a recording fake of the Slack Web API (tests/slack_fake_server.py), and three
servers, each in its own process:

- cfy-bot: `serve_http` (waitress, the request guard) against the demo's simulated managers;
- bare Bolt (waitress): a Bolt app whose `/cfy` listener only acks, under the same waitress settings
  (bot.slack.runtime.http_server) and nothing of ours in front of Bolt;
- bare Bolt (gunicorn): the same bare app under gunicorn gthread, 1 worker x N threads, the setup `cfy-bot http`
  had before (skipped if gunicorn is not installed, or with --no-gunicorn).

For each: the resident memory at rest; the peak RSS (VmHWM of the serving process) after an unsigned POST of
a 1 GiB body, streamed by this client in 256 KiB pieces (never held whole), first chunked, then with a
declared Content-Length (the peak is the process's highest so far); the RSS while 200 clients each hold all
of a 1 MiB body but its last byte; then, with 100 slow clients holding
connections open (each declared a 100 kB body and sent a few bytes of it), the latency of `/health` and of
signed `/cfy help` requests, sent one after another, each with a 3 s timeout. The streaming stops when the
server answers or closes, when the server's RSS passes --rss-stop-mib (then the figure reads ">= that"), or
after --seconds.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SECRET = "bench-signing-secret"
USER = "UBENCH1"
PIECE = 256 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the servers (each in its own process: `--serve bot|bare|gunicorn`) ----------------------------------

def serve_bot(port: int, api: str, threads: int) -> int:
    """cfy-bot's own serve_http, against the demo's simulated managers (in process)."""
    from dataclasses import replace

    from bot.front.demo import make_demo
    from bot.settings import Grant
    from bot.slack import serve_http

    demo = make_demo({"BOT_LOG_LEVEL": "WARNING"})
    settings = replace(demo.settings, slack_bot_token="xoxb-test", slack_signing_secret=SECRET, slack_api_url=api,
                       grants=(*demo.settings.grants, Grant(USER, "admin")))
    print(f"demo folder: {demo.folder}", flush=True)
    return serve_http(settings, port, threads, transport=demo.transport)


def bare_wsgi(api: str):  # noqa: ANN201 - a WSGI callable
    """A Bolt app whose `/cfy` listener only acks, behind Bolt's WSGI adapter, with a `/health`."""
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient

    app = App(client=WebClient(token="xoxb-test", base_url=api), signing_secret=SECRET)

    @app.command("/cfy")
    def only_ack(ack):  # noqa: ANN001, ANN202 - Bolt injects by name
        ack()

    handler = SlackRequestHandler(app)

    def wsgi(environ, start_response):  # noqa: ANN001, ANN202
        if environ.get("PATH_INFO") == "/health":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        return handler(environ, start_response)

    return wsgi


def serve_bare(port: int, api: str, threads: int) -> int:
    """The bare app under the same waitress settings as `cfy-bot http`."""
    from bot.slack.runtime import http_server

    http_server(bare_wsgi(api), "127.0.0.1", port, threads).run()
    return 0


def serve_gunicorn(port: int, api: str, threads: int) -> int:
    """The bare app under gunicorn gthread, 1 worker x `threads` (what `cfy-bot http` ran before)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"127.0.0.1:{port}", "workers": 1, "threads": threads,
                               "worker_class": "gthread", "timeout": 60, "control_socket_disable": True}.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):  # noqa: ANN202 - gunicorn's hook
            return bare_wsgi(api)

    Server().run()
    return 0


# -- the measuring side ---------------------------------------------------------------------------------

def _start(kind: str, port: int, api: str, threads: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BOT_", "CLOUDIFY_"))}
    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--api", api, "--threads", str(threads)]
    return subprocess.Popen(cmd, env={**env, "PYTHONPATH": str(ROOT)}, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{url} did not start:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up:\n{log.read_text()}")


def _serving_pid(proc: subprocess.Popen) -> int:
    """The process that serves requests: gunicorn's worker (the master's only child), else the process."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(children[0]) if children else proc.pid


def _mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _huge(port: int, pid: int, size: int, chunked: bool, rss_stop: float, seconds: float) -> tuple[str, int, bool]:
    """Stream an unsigned `size`-byte body; (what the server answered, bytes sent, stopped by the RSS bound)."""
    head = f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    piece = b"\0" * PIECE
    frame = b"%x\r\n%s\r\n" % (PIECE, piece) if chunked else piece
    sent, stopped, answer = 0, False, b""
    end = time.monotonic() + seconds
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(head.encode())
            while sent < size and time.monotonic() < end:
                if select.select([s], [], [], 0)[0]:
                    break  # the server answered (or closed) before the body was sent
                if _mib(pid, "VmRSS") > rss_stop:
                    stopped = True
                    break
                s.sendall(frame)
                sent += PIECE
            if chunked and sent >= size:
                s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: it stopped reading
        s.settimeout(30 if not stopped and sent >= size else 3)
        try:
            answer = s.recv(200)
        except OSError as exc:
            answer = f"({type(exc).__name__})".encode()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace").removeprefix("HTTP/1.1 ") or "(closed)"
    return status, sent, stopped


def _slow_clients(port: int, n: int) -> list[socket.socket]:
    slow = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 100000\r\n\r\n{{\"a\":".encode())
        slow.append(s)
    time.sleep(0.5)  # let the server pick them all up (gunicorn hands each to a thread once it is readable)
    return slow


def _nearly_whole(port: int, n: int) -> list[socket.socket]:
    """`n` connections, each sending an unsigned body of 1 MiB but its last byte, and staying open."""
    held, size = [], 1 << 20
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        try:
            s.sendall(f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {size}\r\n\r\n"
                      .encode() + b"a" * (size - 1))
        except BlockingIOError:
            pass  # what did not fit in the socket buffers now stays unsent: the server is not reading
        held.append(s)
    return held


def _probe(url: str, probes: int, signed: bool, response_url: str) -> tuple[list[float], int]:
    """Latencies (s) of `probes` requests one after another, and how many timed out (after 3 in a row: stop)."""
    from bot.slack.fake import command_body, command_fields, signed_headers

    times, timeouts = [], 0
    for _ in range(probes):
        start = time.perf_counter()
        try:
            if signed:
                body = command_body(command_fields("help", user=USER, response_url=response_url))
                req = urllib.request.Request(url + "/slack/events", data=body.encode(),
                                             headers=signed_headers(SECRET, body), method="POST")
            else:
                req = urllib.request.Request(url + "/health")
            with urllib.request.urlopen(req, timeout=3) as resp:  # noqa: S310 - loopback
                resp.read()
            times.append(time.perf_counter() - start)
        except (OSError, urllib.error.URLError):
            timeouts += 1
            if timeouts >= 3 and not times:
                break
    return times, timeouts


def _stats(samples: list[float], timeouts: int) -> str:
    if not samples:
        return f"all {timeouts} timed out (3 s)"
    ms = sorted(x * 1000 for x in samples)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    extra = f", {timeouts} timed out" if timeouts else ""
    return f"{statistics.median(ms):.1f} / {p99:.1f} / {ms[-1]:.1f}{extra}"


def measure_one(kind: str, args: argparse.Namespace, api: str, response_url: str, logs: Path) -> dict[str, str]:
    port = _free_port()
    proc = _start(kind, port, api, args.threads, logs / f"{kind}.log")
    url = f"http://127.0.0.1:{port}"
    out: dict[str, str] = {}
    try:
        _wait_up(url, proc, logs / f"{kind}.log")
        pid = _serving_pid(proc)
        out["rest"] = f"{_mib(pid, 'VmRSS'):.0f}"
        size = args.size_mib * 1024 * 1024
        for chunked in (True, False):  # chunked first: the peak is the process's peak so far
            status, sent, stopped = _huge(port, pid, size, chunked, args.rss_stop_mib, args.seconds)
            time.sleep(1.0)  # whatever the server does with it after the upload shows in its peak
            if proc.poll() is not None:
                status += " (server died)"
            peak = _mib(pid, "VmHWM") if proc.poll() is None else float("nan")
            key = "chunked" if chunked else "declared"
            bound = f">= {args.rss_stop_mib:.0f} (stopped sending)" if stopped else f"{peak:.0f}"
            out[key] = f"{bound}; answer {status}; {sent / 2**20:.0f} MiB sent"
        held = _nearly_whole(port, args.held)
        try:
            time.sleep(1.0)
            out["held"] = f"{_mib(pid, 'VmRSS'):.0f}"
        finally:
            for s in held:
                s.close()
        slow = _slow_clients(port, args.slow)
        try:
            out["health"] = _stats(*_probe(url, args.probes, False, response_url))
            out["cfy"] = _stats(*_probe(url, args.probes // 4, True, response_url))
            out["slow_rss"] = f"{_mib(pid, 'VmRSS'):.0f}"
        finally:
            for s in slow:
                s.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


def measure(args: argparse.Namespace) -> int:
    from slack_fake_server import FakeSlack

    fake = FakeSlack().start()
    logs = Path(tempfile.mkdtemp(prefix="cfy-http-abuse-"))
    kinds = [("bot", "cfy-bot (waitress)"), ("bare", "bare Bolt (waitress)")]
    try:
        import gunicorn  # noqa: F401
        if not args.no_gunicorn:
            kinds.append(("gunicorn", f"bare Bolt (gunicorn {args.threads} thr)"))
    except ImportError:
        print("gunicorn is not installed: the before-column is skipped")
    try:
        results = {kind: measure_one(kind, args, fake.api_url, fake.response_url("bench"), logs) for kind, _ in kinds}
    finally:
        fake.stop()
    for line in (logs / "bot.log").read_text().splitlines():
        if line.startswith("demo folder: "):
            shutil.rmtree(line.removeprefix("demo folder: "), ignore_errors=True)
    rows = [("RSS at rest, MiB", "rest"),
            (f"peak RSS after a {args.size_mib} MiB chunked body, MiB", "chunked"),
            (f"peak RSS after that and a {args.size_mib} MiB body with Content-Length, MiB", "declared"),
            (f"RSS with {args.held} clients each holding 1 MiB of a body but its last byte, MiB", "held"),
            (f"/health p50/p99/max ms, {args.slow} slow clients", "health"),
            (f"signed /cfy p50/p99/max ms, {args.slow} slow clients", "cfy"),
            (f"RSS with {args.slow} slow clients, MiB", "slow_rss")]
    print(f"unsigned bodies streamed in {PIECE // 1024} KiB pieces; {args.probes} /health and {args.probes // 4} "
          f"signed /cfy probes one after another, 3 s timeout each; waitress/gunicorn threads: {args.threads}")
    for title, key in rows:
        print(title)
        for kind, name in kinds:
            print(f"    {name:<28}{results[kind].get(key, '-')}")
    problems = [ln for ln in (logs / "bot.log").read_text().splitlines() if "Traceback" in ln or " ERROR " in ln]
    print(f"server logs in {logs}; cfy-bot's log: {(logs / 'bot.log').stat().st_size:,} bytes, "
          f"{len(problems)} errors or tracebacks")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size-mib", type=int, default=1024, help="size of the unsigned body, MiB")
    p.add_argument("--slow", type=int, default=100, help="slow clients held open during the latency probes")
    p.add_argument("--held", type=int, default=200, help="clients that send all of a 1 MiB body but one byte")
    p.add_argument("--probes", type=int, default=100, help="/health requests (a quarter as many signed /cfy)")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--rss-stop-mib", type=float, default=2048.0, help="stop streaming once the server is this big")
    p.add_argument("--seconds", type=float, default=120.0, help="longest time spent streaming one body")
    p.add_argument("--no-gunicorn", action="store_true", help="skip the bare app under gunicorn")
    p.add_argument("--serve", choices=("bot", "bare", "gunicorn"), help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--api", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        return {"bot": serve_bot, "bare": serve_bare, "gunicorn": serve_gunicorn}[args.serve](
            args.port, args.api, args.threads)
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
