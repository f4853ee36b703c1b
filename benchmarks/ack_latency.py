"""Time to acknowledge `/cfy` while 20 long operations run, next to a bare Bolt app that only acks.

    python benchmarks/ack_latency.py [--rate 20] [--seconds 15] [--long 20] [--threads 8]

Everything is on loopback: a recording fake of the Slack Web API (tests/slack_fake_server.py), `cfy-bot http`
under waitress (N threads) against the two demo simulated managers, and, in the same run, a bare
Bolt app under the same waitress settings whose only listener acks. First 20 `snapshots create --queue`
operations are started (they queue on the simulators and stay running); then signed `/cfy` commands are sent
to both apps, interleaved, at a steady rate (open loop: a slow answer does not slow the sender), and the time
from sending a request to reading its response is reported as p50/p99/max. Aim: p99 < 50 ms, within 1.2x of
the bare app.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SECRET = "bench-signing-secret"
USER = "UBENCH1"
COMMANDS = ("status", "snapshots list -s 20", "help", "snapshots status -m staging")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the two servers (each runs in its own process: `--serve bot|bare`) ----------------------------------

CREATE_SECONDS = 30.0  # each queued snapshot create runs this long, so all 20 outlast the measurement


def serve_bot(port: int, api: str, threads: int, managers: str) -> int:
    """cfy-bot's own serve_http, against the demo simulators (in process), or the simulators at `managers`."""
    from dataclasses import replace

    from bot.config import load_settings
    from bot.front.demo import make_demo
    from bot.settings import Grant, ManagerSettings
    from bot.slack import serve_http

    demo = make_demo({"BOT_LOG_LEVEL": "WARNING"})
    for sim in demo.simulators.values():
        sim.durations["create_snapshot"] = CREATE_SECONDS
    settings, transport = demo.settings, demo.transport
    if managers:  # the managers' work happens in other processes, as in production
        remote = tuple(ManagerSettings(name, (url,), username="admin", password="admin")
                       for name, url in zip(("production", "staging"), managers.split(","), strict=True))
        settings, transport = load_settings({"BOT_DATA_DIR": demo.folder}, managers=remote), None
    settings = replace(settings, slack_bot_token="xoxb-test", slack_signing_secret=SECRET, slack_api_url=api,
                       grants=(*settings.grants, Grant(USER, "admin")))
    print(f"demo folder: {demo.folder}", flush=True)  # removed by the measuring side once the worker is gone
    return serve_http(settings, port, threads, transport=transport)


def serve_simulator(port: int, data_dir: str) -> int:
    """One seeded simulated manager over HTTP (`--remote-managers`)."""
    from simulator import Simulator
    from simulator.seed import seed_demo
    from simulator.server import make_server

    sim = Simulator(data_dir=data_dir)
    sim.durations["create_snapshot"] = CREATE_SECONDS
    seed_demo(sim)
    make_server("127.0.0.1", port, sim, verbose=False).serve_forever()
    return 0


def serve_bare(port: int, api: str, threads: int) -> int:
    """A Bolt app whose `/cfy` listener only acks, under the same server and settings as `cfy-bot http`
    (the same bare app http_abuse.py measures)."""
    from http_abuse import serve_bare as serve

    return serve(port, api, threads)


# -- the measuring side ---------------------------------------------------------------------------------

def _start(kind: str, port: int, api: str, threads: int, log: Path, managers: str = "") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BOT_", "CLOUDIFY_"))}
    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--api", api, "--threads", str(threads),
           "--managers", managers]
    return subprocess.Popen(cmd, env={**env, "PYTHONPATH": str(ROOT)}, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_up(url: str, proc: subprocess.Popen, log: Path, path: str = "/health") -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit(f"{url} did not start:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + path, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers (the simulator wants credentials for /version)
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up:\n{log.read_text()}")


def _timed(url: str, text: str, fake_response_url: str, channel: str = "CBENCH") -> float:
    from bot.slack.fake import send_command

    start = time.perf_counter()
    status, _ = send_command(url + "/slack/events", SECRET, text, user=USER, user_name="bench", channel=channel,
                             response_url=fake_response_url)
    elapsed = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    return elapsed


def _stats(samples: list[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return statistics.median(ms), p99, ms[-1]


def measure(args: argparse.Namespace) -> int:
    from slack_fake_server import FakeSlack

    fake = FakeSlack().start()
    logs = Path(tempfile.mkdtemp(prefix="cfy-ack-bench-"))
    bot_port, bare_port = _free_port(), _free_port()
    sims, managers = [], ""
    if args.remote_managers:
        ports = [_free_port(), _free_port()]
        # for a simulator, the "api" argument is its data folder
        sims = [_start("sim", p, str(logs / f"sim-{p}"), 0, logs / f"sim-{p}.log") for p in ports]
        managers = ",".join(f"http://127.0.0.1:{p}" for p in ports)
        for p, proc in zip(ports, sims, strict=True):
            _wait_up(f"http://127.0.0.1:{p}/api/v3.1/version", proc, logs / f"sim-{p}.log", path="")
    bot = _start("bot", bot_port, fake.api_url, args.threads, logs / "bot.log", managers)
    bare = _start("bare", bare_port, fake.api_url, args.threads, logs / "bare.log")
    bot_url, bare_url = f"http://127.0.0.1:{bot_port}", f"http://127.0.0.1:{bare_port}"
    try:
        _wait_up(bot_url, bot, logs / "bot.log")
        _wait_up(bare_url, bare, logs / "bare.log")
        for i in range(args.long):  # the long operations: they queue on the simulators and keep running
            manager = ("production", "staging")[i % 2]  # one channel each: Slack allows ~1 message/s per channel
            _timed(bot_url, f"snapshots create bench-{i:02d} --queue -m {manager}", fake.response_url("long"),
                   channel=f"CLONG{i:02d}")
        started = lambda f: _parents(f) + _queued(f)  # noqa: E731 - beyond the pool of 16, ops wait their turn
        if not fake.wait_for(lambda f: started(f) >= args.long, timeout=60):
            raise SystemExit(f"only {started(fake)} of {args.long} operations started; see {logs}")
        waiting = _queued(fake)
        results = _load(args, bot_url, bare_url, fake)
        sent = len(results["bot"])
        fake.wait_for(lambda f: _answered(f) >= sent, timeout=20)
        answered = _answered(fake)
        running = args.long - _finished(fake)
    finally:
        for proc in (bot, bare, *sims):
            proc.terminate()
        for proc in (bot, bare, *sims):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # operations still running hold the worker: not our concern here
                proc.kill()
                proc.wait()
        fake.stop()
    for line in (logs / "bot.log").read_text().splitlines():
        if line.startswith("demo folder: "):
            shutil.rmtree(line.removeprefix("demo folder: "), ignore_errors=True)
    where = "simulators in their own processes" if args.remote_managers else "demo simulators in the bot's process"
    print(f"managers: {where}")
    _report(args, results, running, waiting)
    print(f"cfy-bot answered {answered} of the {sent} measured commands (privately, through their response URL)")
    problems = [ln for ln in (logs / "bot.log").read_text().splitlines() if "Traceback" in ln or " ERROR " in ln]
    print(f"server logs in {logs}; {len(problems)} errors logged by cfy-bot")
    return 0


def _parents(fake) -> int:  # noqa: ANN001
    return len([c for c in fake.calls_to("chat.postMessage") if "thread_ts" not in c.params])


def _answered(fake) -> int:  # noqa: ANN001
    return len([c for c in fake.calls_to("response_url") if "/response/q" in c.path])


def _queued(fake) -> int:  # noqa: ANN001
    return len([c for c in fake.calls_to("response_url") if c.params.get("text", "").startswith("WARNING Queued")])


def _finished(fake) -> int:  # noqa: ANN001
    return len([c for c in fake.calls_to("chat.postMessage") if c.params.get("reply_broadcast")])


def _load(args: argparse.Namespace, bot_url: str, bare_url: str, fake) -> dict[str, list[float]]:  # noqa: ANN001
    """Open loop: request k (to each app, alternating first) is sent at start + k / rate."""
    total = int(args.rate * args.seconds)
    results: dict[str, list[float]] = {"bot": [], "bare": []}
    futures = []
    with ThreadPoolExecutor(64) as pool:
        start = time.perf_counter() + 0.2
        for k in range(total):
            delay = start + k / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            text = COMMANDS[k % len(COMMANDS)]
            order = (("bot", bot_url), ("bare", bare_url)) if k % 2 == 0 else (("bare", bare_url), ("bot", bot_url))
            for name, url in order:
                futures.append((name, pool.submit(_timed, url, text, fake.response_url(f"q{k}"))))
        for name, fut in futures:
            results[name].append(fut.result())
    return results


def _report(args: argparse.Namespace, results: dict[str, list[float]], running: int, waiting: int) -> None:
    bot, bare = _stats(results["bot"]), _stats(results["bare"])
    print(f"{len(results['bot'])} commands to each app at {args.rate}/s for {args.seconds:.0f} s, "
          f"waitress, {args.threads} threads; {args.long} long operations started "
          f"({args.long - waiting} running, {waiting} waiting for a pool thread), {running} not finished at the end")
    print(f"{'app':<10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, (p50, p99, worst) in (("cfy-bot", bot), ("bare Bolt", bare)):
        print(f"{name:<10}{p50:>10.1f}{p99:>10.1f}{worst:>10.1f}")
    ratio = bot[1] / bare[1] if bare[1] else float("inf")
    verdict = "OK" if bot[1] < 50 and ratio <= 1.2 else "MISSED"
    print(f"p99 ratio cfy-bot/bare: {ratio:.2f} (aim: p99 < 50 ms and ratio <= 1.2: {verdict})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=20.0, help="commands per second to each app")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--long", type=int, default=20, help="long operations running during the measurement")
    p.add_argument("--threads", type=int, default=8, help="server threads of each app")
    p.add_argument("--remote-managers", action="store_true",
                   help="run the two simulated managers in their own processes (HTTP), as real managers are")
    p.add_argument("--serve", choices=("bot", "bare", "sim"), help=argparse.SUPPRESS)
    p.add_argument("--managers", default="", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--api", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve == "bot":
        return serve_bot(args.port, args.api, args.threads, args.managers)
    if args.serve == "sim":
        return serve_simulator(args.port, args.api)
    if args.serve == "bare":
        return serve_bare(args.port, args.api, args.threads)
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
