"""Spark Connect against classic Spark: trial launch latency and scale-out, first fmin and later.

Each measurement runs in a new process with a new session (see cold_start.py): classic `local[N]`,
or PySpark's local Connect server for the same master. Parts:
- launch: 20 empty one-task jobs in a row, through each API a trial's job can use (classic: an RDD's
  mapPartitions; Connect: mapInArrow, which runtime-ml uses, and mapInPandas): the first job and
  the median of the others;
- fmin: runtime-ml's first and second fmin, 32 trials of 0 s at parallelism 2 on local[2] (what
  launching costs) and 32 trials of 0.5 s at parallelism 4 on local[4] (scale-out, efficiency =
  ideal / actual).
"""

import argparse
import math
import sys

from cold_start import JOBS, fresh_session, med
from common import print_table

KINDS = ("classic", "Spark Connect")


def launch(options):
    rows = []
    for kind, api in (("classic", "rdd"), ("Spark Connect", "mapInArrow"),
                      ("Spark Connect", "mapInPandas")):
        samples = [fresh_session({"master": "local[2]", "mode": JOBS, "api": api,
                                  "max_evals": 20, "remote": kind != "classic"})
                   for _ in range(options.rounds)]
        rows.append([kind, api, f"{med(samples, 'cold'):.3f}", f"{med(samples, 'warm') * 1000:.0f}"])
    print(f"\none-task job launch latency on local[2], {options.rounds} fresh session(s) each")
    print_table(["session", "job", "first job s", "later jobs ms (median)"], rows)


def fmin(options):
    rows = []
    for n, sleep, p in ((32, 0.0, 2), (32, 0.5, 4)):
        ideal = math.ceil(n / p) * sleep
        for kind in KINDS:
            samples = [fresh_session({"master": f"local[{p}]", "mode": "runtime-ml", "sleep": sleep,
                                      "max_evals": n, "parallelism": p,
                                      "remote": kind != "classic"})
                       for _ in range(options.rounds)]
            row = [f"{n} x {sleep} s, p={p}", kind]
            for phase in ("cold", "warm"):
                seconds = med(samples, phase)
                row += [f"{seconds:.2f}", f"{ideal / seconds:.2f}" if ideal else
                        f"{n / seconds:.1f}/s"]
            rows.append(row)
    print(f"\nruntime-ml fmin, classic vs Spark Connect, {options.rounds} fresh session(s) each "
          "(efficiency, or trials/s for 0 s trials)")
    print_table(["trials", "session", "first fmin s", "eff", "second fmin s", "eff"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="part", help="launch, fmin (default: both)")
    parser.add_argument("--rounds", type=int, default=1, help="fresh sessions per point")
    options = parser.parse_args()
    for part in options.parts or ("launch", "fmin"):
        {"launch": launch, "fmin": fmin}[part](options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
