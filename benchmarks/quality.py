"""TPE quality: the best loss runtime-ml finds vs stock SparkTrials, over a fixed set of seeds.

Same objective (a 2-D quadratic, minimum 0), same seeds, same parallelism, stock and runtime-ml
alternating per seed. Target: no regression, i.e. the same best-loss distribution as stock. Prints
both distributions, a two-sided Mann-Whitney U test (a large p: no evidence they differ) and each
seed's pair; writes a plot.
"""

import argparse
import sys

from common import MODES, median, print_table, quiet_logs, run_fmin, save_plot, spark_session
from objectives import bowl


def quartiles(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--max-evals", type=int, default=40)
    parser.add_argument("--parallelism", type=int, default=4)
    options = parser.parse_args()
    from hyperopt import hp
    from scipy.stats import mannwhitneyu

    quiet_logs()
    spark = spark_session(f"local[{options.parallelism}]")
    space = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
    best = {mode: [] for mode in MODES}
    for seed in range(options.seeds):
        for mode in MODES:
            _, trials = run_fmin(spark, mode, bowl, space, options.max_evals, options.parallelism,
                                 seed=seed)
            best[mode].append(min(trials.losses()))
    spark.stop()

    print(f"TPE quality: best loss of {options.max_evals} trials of a 2-D quadratic (minimum 0), "
          f"parallelism {options.parallelism}, seeds 0-{options.seeds - 1}")
    rows = []
    for mode in MODES:
        low, high = quartiles(best[mode])
        rows.append([mode, f"{median(best[mode]):.4f}", f"{low:.4f}", f"{high:.4f}",
                     " ".join(f"{v:.3f}" for v in best[mode])])
    print_table(["", "median best", "q1", "q3", "per seed"], rows)
    p_value = mannwhitneyu(best["stock"], best["runtime-ml"], alternative="two-sided").pvalue
    print(f"Mann-Whitney U, two-sided: p = {p_value:.2f} (target: no regression; p > 0.05 means "
          "no evidence the distributions differ)")

    def draw(axes):
        axes.boxplot([best[mode] for mode in MODES])
        axes.set_xticks(range(1, len(MODES) + 1), list(MODES))
        axes.set_yscale("log")
        axes.set_ylabel("best loss per seed")
        axes.set_title(f"TPE best loss, {options.max_evals} trials, parallelism "
                       f"{options.parallelism}")

    save_plot("quality", draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
