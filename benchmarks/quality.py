"""TPE quality: the best loss runtime-ml finds vs stock SparkTrials, over a fixed set of seeds.

Same objective (a 2-D quadratic, minimum 0), same seeds, stock and runtime-ml alternating per seed,
at each parallelism. Target: no regression. At parallelism 1 both propose trial k+1 while trial k
runs, from the same seed, so the trials are identical seed by seed unless a trial happens to finish
before the next proposal in one mode and not in the other (these trials take milliseconds;
tests/test_dispatch.py pins the identity with 1 s trials). At parallelism p > 1 the trials really run
p at a time under runtime-ml, while stock launches about one trial per second, so fewer of its trials
overlap; hyperopt's TPE counts a running trial as a bad result, so how many overlap changes what it
proposes. The script prints the mean number of trials running at once next to the losses, and a
two-sided Mann-Whitney U test per parallelism (a large p: no evidence the distributions differ).
"""

import argparse
import sys

from common import (
    MODES,
    median,
    percentile,
    print_table,
    quiet_logs,
    run_fmin,
    save_plot,
    spark_session,
)
from objectives import bowl


def mean_running(trials, wall):
    """Trial-seconds of evaluation per second of wall time: how many ran at once on average."""
    busy = sum((t["refresh_time"] - t["book_time"]).total_seconds() for t in trials.trials)
    return busy / wall


def proposals(trials):
    return [(t["misc"]["vals"]["x"][0], t["misc"]["vals"]["y"][0])
            for t in sorted(trials.trials, key=lambda t: t["tid"])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--max-evals", type=int, default=40)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 4])
    options = parser.parse_args()
    from hyperopt import hp
    from scipy.stats import mannwhitneyu

    quiet_logs()
    spark = spark_session(f"local[{max(options.parallelism)}]")
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
    best = {(mode, p): [] for mode in MODES for p in options.parallelism}
    running = {(mode, p): [] for mode in MODES for p in options.parallelism}
    identical = {p: 0 for p in options.parallelism}
    for p in options.parallelism:
        for seed in range(options.seeds):
            seen = {}
            for mode in MODES:
                wall, trials = run_fmin(spark, mode, bowl, space, options.max_evals, p, seed=seed)
                best[(mode, p)].append(min(trials.losses()))
                running[(mode, p)].append(mean_running(trials, wall))
                seen[mode] = proposals(trials)
            identical[p] += seen["stock"] == seen["runtime-ml"]
    spark.stop()

    print(f"TPE quality: best loss of {options.max_evals} trials of a 2-D quadratic (minimum 0), "
          f"seeds 0-{options.seeds - 1}")
    rows = []
    for p in options.parallelism:
        for mode in MODES:
            values = best[(mode, p)]
            low, high = percentile(values, 0.25), percentile(values, 0.75)
            rows.append([p, mode, f"{median(running[(mode, p)]):.1f}", f"{median(values):.4f}",
                         f"{low:.4f}", f"{high:.4f}", " ".join(f"{v:.3f}" for v in values)])
    print_table(["parallelism", "", "running at once", "median best", "q1", "q3", "per seed"],
                rows)
    for p in options.parallelism:
        p_value = mannwhitneyu(best[("stock", p)], best[("runtime-ml", p)],
                               alternative="two-sided").pvalue
        print(f"parallelism {p}: identical trials in {identical[p]} of {options.seeds} seeds; "
              f"Mann-Whitney U two-sided p = {p_value:.2f}")

    def draw(axes):
        groups = [(p, mode) for p in options.parallelism for mode in MODES]
        axes.boxplot([best[(mode, p)] for p, mode in groups])
        axes.set_xticks(range(1, len(groups) + 1), [f"{mode}\np={p}" for p, mode in groups])
        axes.set_yscale("log")
        axes.set_ylabel("best loss per seed")
        axes.set_title(f"TPE best loss, {options.max_evals} trials, {options.seeds} seeds")

    save_plot("quality", draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
