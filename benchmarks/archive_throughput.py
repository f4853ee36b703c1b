"""Throughput and memory of `cfy-bot run "snapshots download …"` against `curl -o` of the same archive.

Serves the simulator over HTTP on 127.0.0.1 holding one snapshot of `--size-mib` MiB (a valid new-format
zip: metadata.json, the mgmt and tenant dumps, and one incompressible stored member; sent with sendfile, as
nginx sends it on a real manager), then, in the same run, times curl downloading the archive URL and the
bot copying it off into its archive (stream, count, sha256, every member's CRC, fsync, rename, catalog),
each in a fresh process, and samples each one's peak resident memory (VmHWM).

Aims: the bot at >= 1.0x the throughput of `curl -o` followed by `sync` of the file (curl made as durable
as the bot's copy, which is on disk, fsync, before the catalog calls it verified), and peak memory under
80 MiB whatever the size. Plain curl (the file left in the page cache) is printed next to them.

    python benchmarks/archive_throughput.py                 # 1 GiB, best of 2 each
    python benchmarks/archive_throughput.py --size-mib 64 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from simulator import Simulator  # noqa: E402
from simulator.models import new_snapshot  # noqa: E402
from simulator.server import make_server  # noqa: E402

MIB = 1 << 20
TENANT = "default_tenant"
AIM_RATIO = 1.0  # against curl+sync
AIM_RSS_MIB = 80.0


def write_snapshot_zip(path: str, size_mib: int) -> None:
    """A valid new-format snapshot zip with `size_mib` MiB of incompressible stored data, written fast."""
    block = os.urandom(16 * MIB)  # random, so nothing along the way can compress it; cycled with offsets
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        zf.writestr("metadata.json", json.dumps({"snapshot_version": "7.0.5", "execution_id": "benchmark"}))
        zf.writestr("mgmt/00000001.json", json.dumps({"type": "tenants", "items": [{"name": TENANT}]}))
        zf.writestr(f"tenants/{TENANT}/00000001.json", json.dumps({"type": "blueprints", "items": []}))
        info = zipfile.ZipInfo(f"tenants/{TENANT}/blueprints/big.tar.gz", date_time=(2026, 11, 29, 2, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        view = memoryview(block)
        with zf.open(info, "w", force_zip64=True) as member:
            for i in range(size_mib):
                start = (i * 7919) % (15 * MIB)
                member.write(view[start:start + MIB])


def serve(sim: Simulator) -> tuple[str, object]:
    server = make_server("127.0.0.1", 0, sim)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def _vm_hwm_mib(pid: int) -> float:
    """The process's own peak resident memory (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str, float]:
    """Run `cmd`; (seconds, its peak RSS in MiB, exit code, its output, CPU seconds: user + system).

    The peak is the process's VmHWM sampled every 10 ms (a high-water mark, so sampling misses at most the
    last 10 ms). wait4()'s ru_maxrss would be wrong here: it keeps the high-water mark of the forked copy of
    this (big) benchmark process from before exec. Its CPU times are right (with the children it waited for:
    curl and sync under the shell).
    """
    os.sync()  # start from a quiet disk: no run pays for the previous run's dirty pages
    out = tempfile.TemporaryFile()  # noqa: SIM115 - read back and closed below
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    peak = 0.0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _vm_hwm_mib(proc.pid))
        time.sleep(0.01)
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    with out:
        out.seek(0)
        return seconds, peak, proc.returncode, out.read().decode(errors="replace"), usage.ru_utime + usage.ru_stime


def bot_command() -> list[str]:
    """The `cfy-bot` script installed for this interpreter (not a version manager's shim found first on
    PATH: pyenv's adds about 0.1 s of bash to every start), else `python -m bot.front.cli`."""
    exe = os.path.join(os.path.dirname(sys.executable), "cfy-bot")
    return [exe] if os.access(exe, os.X_OK) else [sys.executable, "-m", "bot.front.cli"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="snapshot size in MiB (1024)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best counts (2)")
    parser.add_argument("--workdir", default=None, help="where the files go (a temporary folder)")
    args = parser.parse_args(argv)
    if not shutil.which("curl"):
        print("curl is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cfy-bench-", dir=args.workdir) as work:
        sid = f"bench-{args.size_mib}m"
        sim = Simulator(data_dir=os.path.join(work, "sim"))
        folder = os.path.dirname(sim.store.path(TENANT, sid))
        os.makedirs(folder, exist_ok=True)
        t = time.perf_counter()
        write_snapshot_zip(sim.store.path(TENANT, sid), args.size_mib)
        size = os.path.getsize(sim.store.path(TENANT, sid))
        sim.state.snapshots[TENANT][sid] = new_snapshot(sid, TENANT, "admin", sim.now(), "created")
        print(f"snapshot {sid}: {size} bytes, written in {time.perf_counter() - t:.1f} s")
        url, server = serve(sim)
        archive_url = f"{url}/api/v3.1/snapshots/{sid}/archive"
        curl = ["curl", "-sS", "--fail", "-u", "admin:admin", "-H", f"Tenant: {TENANT}", "-o",
                os.path.join(work, "curl.zip"), archive_url]
        env = {**os.environ, "CLOUDIFY_MANAGER_URL": url, "CLOUDIFY_MANAGER_NAME": "bench",
               "CLOUDIFY_USERNAME": "admin", "CLOUDIFY_PASSWORD": "admin", "BOT_SHELL_ROLE": "operator",
               "BOT_DATA_DIR": os.path.join(work, "bot"), "PYTHONPATH": ROOT}
        curl_file = os.path.join(work, "curl.zip")
        durable = ["sh", "-c", '"$@" && sync "$0"', curl_file, *curl]  # curl, then fsync of its file
        bot = [*bot_command(), "run", f"snapshots download {sid}"]
        timed(curl)  # warm the page cache, so both read the same cached file
        # Bytecode as an installed package has it (pip compiles on install; this machine may set
        # PYTHONDONTWRITEBYTECODE, which would make every run recompile the sources first).
        subprocess.run([sys.executable, "-m", "compileall", "-q", *(os.path.join(ROOT, d) for d in
                                                                  ("bot", "commands", "simulator"))], check=True)
        startup, _, _, _, _ = timed([*bot_command(), "run", "help"], env)
        print(f"  bot start-up alone (`cfy-bot run help`): {startup:.2f} s")
        results: dict[str, list[tuple[float, float]]] = {"curl": [], "bot": [], "curl+sync": []}
        cpu: dict[str, list[float]] = {name: [] for name in results}
        cases = [("bot", bot, env), ("curl", curl, None), ("curl+sync", durable, None)]
        for _ in range(args.repeat):
            for name, cmd, cmd_env in cases:
                seconds, rss, code, output, cpu_s = timed(cmd, cmd_env)
                if code != 0:
                    print(f"{name} failed (exit {code}):\n{output}", file=sys.stderr)
                    return 1
                results[name].append((seconds, rss))
                cpu[name].append(cpu_s)
                memory = f"  peak RSS {rss:5.1f} MiB" if name != "curl+sync" else ""  # (that one is the shell's)
                print(f"  {name:9s} {seconds:6.2f} s  {size / MIB / seconds:7.1f} MiB/s  cpu {cpu_s:5.2f} s{memory}")
                if name.startswith("curl"):
                    os.unlink(curl_file)
                if name.startswith("bot"):
                    shutil.rmtree(os.path.join(work, "bot"), ignore_errors=True)
        server.shutdown()  # type: ignore[attr-defined]
        sim.close()
    curl_s = min(s for s, _ in results["curl"])
    durable_s = min(s for s, _ in results["curl+sync"])
    bot_s = min(s for s, _ in results["bot"])
    peak = max(r for _, r in results["bot"])
    ratio = durable_s / bot_s
    medians = {name: statistics.median(s for s, _ in runs) for name, runs in results.items()}
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"medians of {args.repeat}: " + ", ".join(f"{name} {m:.2f} s" for name, m in medians.items())
          + f"; ratio of medians {medians['curl+sync'] / medians['bot']:.2f}x curl+sync, "
          + f"{medians['curl'] / medians['bot']:.2f}x curl")
    print("CPU (user + system) medians: " + ", ".join(f"{name} {statistics.median(c):.2f} s" for name, c in cpu.items())
          + " (the server's sendfile, in this process, is not counted)")
    print(f"size {size / MIB:.0f} MiB; best of {args.repeat}:")
    print(f"curl  {curl_s:.2f} s  {size / MIB / curl_s:.1f} MiB/s")
    print(f"bot   {bot_s:.2f} s  {size / MIB / bot_s:.1f} MiB/s  (whole `cfy-bot run`, start-up included)")
    print(f"curl+sync {durable_s:.2f} s  {size / MIB / durable_s:.1f} MiB/s  (curl made durable)")
    print(f"ratio {ratio:.2f}x curl+sync (aim >= {AIM_RATIO})  {'OK' if ratio >= AIM_RATIO else 'BELOW AIM'}")
    print(f"ratio {curl_s / bot_s:.2f}x curl (page cache only, context)")
    print(f"bot peak RSS {peak:.1f} MiB (aim < {AIM_RSS_MIB:.0f})  {'OK' if peak < AIM_RSS_MIB else 'ABOVE AIM'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
