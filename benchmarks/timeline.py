"""Where the time between trials goes: one runtime-ml fmin at parallelism P, traced per trial.

Each trial's objective records when it starts and ends; hyperopt's trial documents say when
runtime-ml launched it (book_time); the algorithm is wrapped to time every proposal. Prints the
efficiency, the proposal cost, the launch latency (book time to the objective's first line) and
the gap between a trial's end and the next trial's start on a freed slot. A diagnostic for
scaleout.py, not a target. Default: 128 trials of 1 s at parallelism 8 on local[8], TPE.
"""

import argparse
import math
import statistics
import sys
import time

from common import percentile, quiet_logs, run_fmin, spark_session
from objectives import traced_sleeper


def describe(name, values_ms):
    print(f"{name:<38} median {statistics.median(values_ms):6.1f} ms   mean "
          f"{statistics.mean(values_ms):6.1f} ms   p90 {percentile(values_ms, 0.9):6.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--max-evals", type=int, default=128)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--algo", default="tpe", choices=["tpe", "rand"])
    parser.add_argument("--one-ahead", action="store_true",
                        help="at parallelism 1, propose while the previous trial runs (as stock): "
                             "spark.runtimeml.hyperopt.sequentialAtParallelismOne false")
    options = parser.parse_args()
    from hyperopt import hp, rand, tpe

    quiet_logs()
    p = options.parallelism
    spark = spark_session(f"local[{p}]")
    if options.one_ahead:
        from runtime_ml.conf import SEQUENTIAL_AT_ONE

        spark.conf.set(SEQUENTIAL_AT_ONE.name, "false")
    space = hp.uniform("x", -5, 5)
    suggest = {"tpe": tpe, "rand": rand}[options.algo].suggest
    proposals = []

    def timed_suggest(new_ids, domain, trials, seed):
        started = time.perf_counter()
        docs = suggest(new_ids, domain, trials, seed)
        proposals.append(time.perf_counter() - started)
        return docs

    run_fmin(spark, "runtime-ml", traced_sleeper(0.2), space, 2 * p, p)  # warm workers
    wall, trials = run_fmin(spark, "runtime-ml", traced_sleeper(options.sleep), space,
                            options.max_evals, p, algo=timed_suggest)
    spark.stop()

    runs = sorted((t["result"]["started"], t["result"]["ended"], t["book_time"].timestamp())
                  for t in trials.trials)
    ideal = math.ceil(options.max_evals / p) * options.sleep
    print(f"{options.max_evals} trials of {options.sleep} s at parallelism {p} ({options.algo}): "
          f"{wall:.2f} s, ideal {ideal:.1f} s, efficiency {ideal / wall:.3f}")
    describe(f"proposal ({len(proposals)} calls)", [s * 1000 for s in proposals])
    describe("launch (book time -> objective starts)", [(s - b) * 1000 for s, _, b in runs])
    # Pair the k-th trial end with the (k + p)-th trial start: the trial that took that slot.
    ends = sorted(e for _, e, _ in runs)
    starts = sorted(s for s, _, _ in runs)[p:]
    describe("gap (trial ends -> next one starts)",
             [(s - e) * 1000 for e, s in zip(ends, starts, strict=False)])
    busy = sum(e - s for s, e, _ in runs)
    print(f"slots busy {busy / (p * wall):.3f} of the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
