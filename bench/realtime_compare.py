"""Realtime latency of this tree beside another one (a baseline checkout), runs interleaved.

    python bench/realtime_compare.py BASELINE_DIR [--rounds 3] [--seconds 5] [--nats nats://127.0.0.1:4222]

``BASELINE_DIR`` is a source tree of core (say ``git worktree add /tmp/base main``, or ``git
archive``). Each round runs, for this tree and then the baseline (A B A B ..., as
:func:`_harness.interleave` does), the memory pub/sub latency of ``bench/deliver.py`` (one
process, 1,000 events/s, commit -> load) and, with ``--nats``, ``bench/realtime_nats.py``
(gateway and scheduler in separate processes, 202 -> load); each run imports its tree first on
``PYTHONPATH``, the bench scripts being this tree's. It prints the median of each percentile
beside the baseline's, with the load average. Figures only.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from _harness import load_average

HERE = Path(__file__).resolve().parent
PERCENTILES = ("p50", "p95", "p99")


def _run(tree: Path, script: str, args: list[str]) -> dict[str, float]:
    """Run ``bench/<script>`` with ``tree`` first on the path; the percentiles it printed (ms)."""
    paths = [str(tree), str(tree / "plugins" / "core-plugin-nats" / "src"), str(HERE)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    out = subprocess.run([sys.executable, str(HERE / script), *args], env=env, capture_output=True, text=True,
                         check=True, timeout=600).stdout
    found = {p: float(m.group(1)) for p in PERCENTILES if (m := re.search(rf"{p} ([\d.]+)", out))}
    if len(found) != len(PERCENTILES):
        raise SystemExit(f"{script} on {tree} printed no percentiles:\n{out}")
    return found


def compare(name: str, trees: dict[str, Path], script: str, args: list[str], rounds: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    for _ in range(rounds):
        for label, tree in trees.items():
            runs[label].append(_run(tree, script, args))
    print(f"{name}, median of {rounds} interleaved runs ({load_average()}):")
    for label, figures in runs.items():
        medians = "  ".join(f"{p} {statistics.median(f[p] for f in figures):7.1f}" for p in PERCENTILES)
        each = ", ".join(f"{f['p99']:.0f}" for f in figures)
        print(f"  {label:<9} {medians} ms   (p99 of each run: {each})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path, help="a source tree of core to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--nats", default="", help="also through NATS, e.g. nats://127.0.0.1:4222")
    args = parser.parse_args()
    trees = {"this tree": HERE.parent, "baseline": args.baseline.resolve()}
    rate, seconds = str(args.rate), str(args.seconds)
    compare(f"memory pub/sub, one process, {rate} events/s, commit -> load", trees, "deliver.py",
            ["--skip", "backlog", "--rate", rate, "--seconds", seconds], args.rounds)
    if args.nats:
        compare(f"NATS, separate processes, {rate} events/s, 202 -> load", trees, "realtime_nats.py",
                ["--url", args.nats, "--rate", rate, "--seconds", seconds], args.rounds)


if __name__ == "__main__":
    main()
