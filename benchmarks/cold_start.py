"""How long `cfy-bot run --demo status` takes from a cold start, next to a bare Python start, in one run.

Each run is a fresh process (no warm interpreter); the demo builds two seeded simulated managers, a temporary
SQLite file and archive folder, asks both managers for their status and exits. Prints the median and the
spread of N runs of each. Usage: python benchmarks/cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_"))}
    env["HOME"] = tempfile.mkdtemp(prefix="cfy-bot-bench-")
    cases = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "cfy-bot run --demo status": [sys.executable, "-m", "bot.front.cli", "run", "--demo", "status"],
    }
    timed(cases["cfy-bot run --demo status"], env)  # compile the .pyc files once, as an installed package has them
    print(f"{'command':32} {'median':>8} {'min':>8} {'max':>8}  ({runs} runs each)")
    for name, cmd in cases.items():
        times = [timed(cmd, env) for _ in range(runs)]
        print(f"{name:32} {statistics.median(times):7.3f}s {min(times):7.3f}s {max(times):7.3f}s")


if __name__ == "__main__":
    main()
