"""Cold start of `cfy-bot run --demo status` next to the official `cfy snapshots list` (7.0.5), in one run.

The official CLI is installed by this script into a throwaway venv (`pip install cloudify==7.0.5`; pass
`--cfy-venv DIR` to reuse one that has it), pointed with `cfy profiles use` at a seeded simulator served over
HTTP on 127.0.0.1, and timed listing snapshots. In the same run, interleaved round by round so a busy
machine slows every row alike, each as a fresh process:

- `python -c pass`: the interpreter alone (the floor under both);
- `cfy snapshots list`: the official CLI, one GET against the simulator;
- `cfy-bot run --demo status`: two seeded in-process simulated managers, a temporary SQLite file and
  archive folder, the status of both managers;
- `cfy-bot run "snapshots list"`: the bot's same job as cfy's row, against the same simulator over HTTP.

Aim: `cfy-bot run --demo status` at or below `cfy snapshots list` (medians).

    python benchmarks/cold_start.py [--runs N] [--cfy-venv DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from simulator import Simulator  # noqa: E402
from simulator.seed import seed_demo  # noqa: E402
from simulator.server import make_server  # noqa: E402

CLOUDIFY = "cloudify==7.0.5"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}): {done.stderr[-800:]}")
    return elapsed


def install_cfy(venv: str) -> str:
    """The `cfy` script of a venv holding the official CLI; installs it there when it is missing."""
    cfy = os.path.join(venv, "bin", "cfy")
    if os.access(cfy, os.X_OK):
        return cfy
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", CLOUDIFY], check=True)
    print(f"installed {CLOUDIFY} into {venv} in {time.perf_counter() - began:.0f} s")
    return cfy


def bot_command() -> list[str]:
    """The `cfy-bot` script installed for this interpreter (as `cfy` is its venv's script), else
    `python -m bot.front.cli`. PYTHONPATH makes either run this tree's code."""
    exe = os.path.join(os.path.dirname(sys.executable), "cfy-bot")
    return [exe] if os.access(exe, os.X_OK) else [sys.executable, "-m", "bot.front.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each (7)")
    parser.add_argument("--cfy-venv", default=None, help="a venv with (or to get) the official CLI; "
                                                         "default: a throwaway one, removed after")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="cfy-cold-start-")
    try:
        cfy = install_cfy(args.cfy_venv or os.path.join(work, "cfy-venv"))
        sim = Simulator(data_dir=os.path.join(work, "sim"))
        seed_demo(sim)
        server = make_server("127.0.0.1", 0, sim)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_port
        base = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_", "CFY_"))}
        base["HOME"] = os.path.join(work, "home")
        os.makedirs(base["HOME"])
        cfy_env = {**base, "CFY_WORKDIR": os.path.join(work, "cfy-home")}
        bot_env = {**base, "PYTHONPATH": ROOT}
        http_env = {**bot_env, "CLOUDIFY_MANAGER_URL": f"http://127.0.0.1:{port}", "CLOUDIFY_MANAGER_NAME": "sim",
                    "CLOUDIFY_USERNAME": "admin", "CLOUDIFY_PASSWORD": "admin", "BOT_SHELL_ROLE": "operator",
                    "BOT_DATA_DIR": os.path.join(work, "bot")}
        timed([cfy, "profiles", "use", "127.0.0.1", "-u", "admin", "-p", "admin", "-t", "default_tenant",
               "--rest-port", str(port)], cfy_env)
        # Bytecode as an installed package has it (pip compiles on install; PYTHONDONTWRITEBYTECODE may be set).
        subprocess.run([sys.executable, "-m", "compileall", "-q", *(os.path.join(ROOT, d) for d in
                                                                  ("bot", "commands", "simulator"))], check=True)
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass (floor)": ([sys.executable, "-c", "pass"], base),
            "cfy snapshots list (official)": ([cfy, "snapshots", "list"], cfy_env),
            "cfy-bot run --demo status": ([*bot_command(), "run", "--demo", "status"], bot_env),
            'cfy-bot run "snapshots list"': ([*bot_command(), "run", "snapshots list"], http_env),
        }
        for cmd, env in cases.values():
            timed(cmd, env)  # once each first: page cache, bytecode, the bot's database
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):  # round-robin: a burst of load on a shared machine hits every row
            for name, (cmd, env) in cases.items():
                times[name].append(timed(cmd, env))
        server.shutdown()
        sim.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"{'command':32} {'median':>8} {'min':>8} {'max':>8}  ({args.runs} runs each, interleaved; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs)")
    for name, values in times.items():
        print(f"{name:32} {statistics.median(values):7.3f}s {min(values):7.3f}s {max(values):7.3f}s")
    bot = statistics.median(times["cfy-bot run --demo status"])
    official = statistics.median(times["cfy snapshots list (official)"])
    verdict = "OK" if bot <= official else "ABOVE AIM"
    print(f"cfy-bot run --demo status / cfy snapshots list (medians): {bot / official:.2f}  (aim <= 1.00)  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
