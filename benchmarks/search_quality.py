"""Search quality at parallelism: what parallel hyperopt loses against sequential hyperopt, and
which proposal policy loses least.

The simulation drives runtime-ml's own proposal policy (runtime_ml.driver.proposals: when a trial
is proposed; the ways to show unfinished trials measured against hyperopt's are below, none of
them shipped) and hyperopt's real tpe.suggest on
a real hyperopt.Trials, with a simulated clock in place of Spark: `parallelism` slots, trial
durations drawn per seed from a log-normal (the same durations for every policy of a seed), a
trial proposed as hyperopt's loop proposes it under that policy and launched as the dispatcher
launches it. Policies:

  sequential        hyperopt's fmin(trials=Trials()) with the same rstate (the reference)
  stock             one proposal ahead of a free slot, unfinished trials shown as hyperopt does
                    (stock SparkTrials; runtime-ml at parallelism > 1, as it ships)
  runtime-ml        as it ships: at parallelism 1 sequential, above it the same as stock
  when-free         proposed when a slot frees (one more result, one fewer unfinished trial)
  left-out          one ahead, tpe shown finished trials only
  startup-finished  one ahead, tpe's random start-up lasts until n_startup_jobs have finished
  mean-liar         one ahead, unfinished trials shown with the mean finished loss

Every row reports the median best loss after --trials trials over the seeds, its quartiles, the
mean, and a two-sided Mann-Whitney U test against stock (p < 0.05: the distributions differ).
At parallelism 1 runtime-ml is sequential hyperopt (checked here on every seed, and by
tests/test_proposals.py); the other policies differ from it only where trials run at once, so
they are run at parallelism > 1, where runtime-ml is stock.

`--spark` runs a smaller check on real Spark (local[4], tracking off, Branin and Hartmann-6):
runtime-ml as it ships (stock's timing) against runtime-ml driven by the when-free rule, to show
the simulation's ordering holds there.
"""

import argparse
import functools
import heapq
import json
import math
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from common import RESULTS, median, percentile, print_table

POLICIES = ("stock", "runtime-ml", "when-free", "left-out", "startup-finished", "mean-liar")
AT_ONE = ("stock", "runtime-ml")  # the others differ from runtime-ml only at parallelism > 1
ABOVE_ONE = ("stock", "when-free", "left-out", "startup-finished", "mean-liar")
PENDING = {"stock": "hyperopt", "runtime-ml": "hyperopt", "when-free": "hyperopt",
           "left-out": "left-out", "startup-finished": "startup-finished",
           "mean-liar": "mean-liar"}


# ------------------------------------------------------------------ objectives (loss: regret >= 0)

def branin(p):
    x1, x2 = p["x1"], p["x2"]
    value = (x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2 + \
        10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
    return value - 0.397887


HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                              [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p):
    x = np.array([p[f"x{i}"] for i in range(6)])
    inner = (HARTMANN_A * (x - HARTMANN_P) ** 2).sum(axis=1)
    return float(-(HARTMANN_ALPHA * np.exp(-inner)).sum() + 3.32237)


def levy10(p):
    w = 1 + (np.array([p[f"x{i}"] for i in range(10)]) - 1) / 4
    middle = ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2)).sum()
    last = (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    return float(np.sin(np.pi * w[0]) ** 2 + middle + last)


def conditional(p):
    """A model-selection-shaped space: three branches with their own (quantized) parameters; the
    best is 0 (branch 'boost', 300 trees, depth 6, learning rate 0.1)."""
    model = p["model"]
    if model["kind"] == "linear":
        return 0.3 + 0.05 * (math.log10(model["C"]) - 1) ** 2 + (0.1 if model["penalty"] == "l1" else 0)
    if model["kind"] == "forest":
        return 0.15 + 0.02 * abs(model["depth"] - 12) / 4 + 0.1 / math.sqrt(model["trees"] / 50)
    return (0.03 * abs(model["depth"] - 6) + 0.5 * (math.log10(model["rate"]) + 1) ** 2
            + 0.05 * abs(model["trees"] - 300) / 100)


def conditional_space():
    from hyperopt import hp

    return {"model": hp.choice("model", [
        {"kind": "linear", "C": hp.loguniform("C", math.log(1e-3), math.log(1e3)),
         "penalty": hp.choice("penalty", ["l1", "l2"])},
        {"kind": "forest", "depth": hp.quniform("f_depth", 2, 20, 1),
         "trees": hp.quniform("f_trees", 50, 500, 50)},
        {"kind": "boost", "depth": hp.quniform("b_depth", 2, 12, 1),
         "trees": hp.quniform("b_trees", 50, 600, 50),
         "rate": hp.qloguniform("rate", math.log(0.005), math.log(1.0), 0.005)},
    ])}


@functools.lru_cache(maxsize=None)
def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    return train_test_split(data.data / 16.0, data.target, test_size=0.4, random_state=0)


@functools.lru_cache(maxsize=None)
def _digits_error(kind, a, b):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    x_train, x_test, y_train, y_test = _digits()
    if kind == "svc":
        model = SVC(C=10.0 ** a, gamma=10.0 ** b)
    else:
        model = KNeighborsClassifier(n_neighbors=int(a), weights=("uniform", "distance")[int(b)])
    return float(1.0 - model.fit(x_train, y_train).score(x_test, y_test))


def digits(p):
    """scikit-learn on the digits data that ships with it: held-out error of an SVC or a k-NN,
    the model and its (quantized) parameters searched; each point is fitted once per process."""
    model = p["model"]
    if model["kind"] == "svc":
        return _digits_error("svc", model["log_C"], model["log_gamma"])
    return _digits_error("knn", model["k"], model["weights"])


def digits_space():
    from hyperopt import hp

    return {"model": hp.choice("model", [
        {"kind": "svc", "log_C": hp.quniform("log_C", -3, 4, 0.25),
         "log_gamma": hp.quniform("log_gamma", -5, 1, 0.25)},
        {"kind": "knn", "k": hp.quniform("k", 1, 30, 1), "weights": hp.choice("weights", [0, 1])},
    ])}


def space_of(name):
    from hyperopt import hp

    if name == "branin":
        return {"x1": hp.uniform("x1", -5, 10), "x2": hp.uniform("x2", 0, 15)}
    if name == "hartmann6":
        return {f"x{i}": hp.uniform(f"x{i}", 0, 1) for i in range(6)}
    if name == "levy10":
        return {f"x{i}": hp.uniform(f"x{i}", -10, 10) for i in range(10)}
    if name == "conditional":
        return conditional_space()
    return digits_space()


OBJECTIVES = {"branin": branin, "hartmann6": hartmann6, "levy10": levy10,
              "conditional": conditional, "digits": digits}


# ------------------------------------------------------------------ unfinished trials, as measured

UNFINISHED = (0, 1)  # hyperopt.base.JOB_STATE_NEW, JOB_STATE_RUNNING


def showing_pending(way):
    """tpe.suggest with unfinished trials shown `way` (a PENDING value): as hyperopt does (no loss
    yet, so an infinite one); left out (start-up and split on finished trials only); with the
    random start-up lasting until n_startup_jobs trials have finished; or with the mean finished
    loss (a constant liar)."""
    import inspect

    from hyperopt import rand, tpe

    from runtime_ml.driver.hyperopt_loop import ShownTrials

    if way == "hyperopt":
        return tpe.suggest
    startup = inspect.signature(tpe.suggest).parameters["n_startup_jobs"].default

    def suggest(new_ids, domain, trials, seed):
        docs = trials.trials
        done = [doc for doc in docs if doc["state"] not in UNFINISHED]
        if way == "startup-finished":
            algo = rand.suggest if len(done) < startup else tpe.suggest
            return algo(new_ids, domain, trials, seed)
        shown = done
        losses = [doc["result"]["loss"] for doc in done if doc["result"].get("loss") is not None]
        if way == "mean-liar" and losses:
            lie = {"status": "ok", "loss": sum(losses) / len(losses)}
            shown = [doc if doc["state"] not in UNFINISHED else dict(doc, result=lie)
                     for doc in docs]
        return tpe.suggest(new_ids, domain, ShownTrials(trials, shown), seed)

    return suggest


# ------------------------------------------------------------------ the simulated clock

def durations(seed, count, sigma):
    """Trial durations in launch order: log-normal, median 1, the same for every policy of a seed."""
    return np.random.default_rng(10_000 + seed).lognormal(0.0, sigma, count)


def simulate(name, policy, parallelism, seed, trials_count, sigma):
    """One search on the simulated clock; returns the losses in trial-id order."""
    from hyperopt import Trials, base
    from hyperopt.base import JOB_STATE_DONE, JOB_STATE_NEW, JOB_STATE_RUNNING

    from runtime_ml.driver import proposals

    objective, space = OBJECTIVES[name], space_of(name)
    domain = base.Domain(objective, space)
    trials = Trials()
    rstate = np.random.default_rng(seed)
    suggest = showing_pending(PENDING[policy])
    if policy == "runtime-ml":
        ahead = proposals.proposes_ahead(parallelism, sequential_at_one=True)
    else:
        ahead = policy != "when-free"
    took = durations(seed, trials_count, sigma)
    clock, proposed, launched = 0.0, 0, 0
    queued, running = [], []  # NEW documents; heap of (end, tid, document)
    while proposed < trials_count or queued or running:
        progress = True
        while progress:  # hyperopt's loop proposes and the dispatcher launches until both wait
            progress = False
            while proposed < trials_count and len(queued) < proposals.queue_length(
                    parallelism - len(running), ahead):
                new_ids = trials.new_trial_ids(1)
                trials.refresh()
                docs = suggest(new_ids, domain, trials, int(rstate.integers(2 ** 31 - 1)))
                trials.insert_trial_docs(docs)
                trials.refresh()
                queued.extend(t for t in trials.trials if t["tid"] in new_ids)
                proposed += 1
                progress = True
            while queued and len(running) < parallelism:
                doc = queued.pop(0)
                doc["state"] = JOB_STATE_RUNNING
                heapq.heappush(running, (clock + took[launched], doc["tid"], doc))
                launched += 1
                progress = True
        if running:  # the next trial to finish
            clock, _, doc = heapq.heappop(running)
            ctrl = base.Ctrl(trials, current_trial=doc)
            doc["result"] = domain.evaluate(base.spec_from_misc(doc["misc"]), ctrl)
            doc["state"] = JOB_STATE_DONE
    assert all(t["state"] not in (JOB_STATE_NEW, JOB_STATE_RUNNING) for t in trials.trials)
    return [t["result"]["loss"] for t in sorted(trials.trials, key=lambda t: t["tid"])]


def sequential(name, seed, trials_count):
    """hyperopt's own sequential search: fmin(trials=Trials()) with the same rstate."""
    from hyperopt import Trials, fmin, tpe

    trials = Trials()
    fmin(OBJECTIVES[name], space_of(name), tpe.suggest, trials_count, trials=trials,
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return [t["result"]["loss"] for t in sorted(trials.trials, key=lambda t: t["tid"])]


def run_one(job):
    name, policy, parallelism, seed, trials_count, sigma = job
    import logging

    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    if policy == "sequential":
        return job, sequential(name, seed, trials_count)
    return job, simulate(name, policy, parallelism, seed, trials_count, sigma)


# ------------------------------------------------------------------ real Spark

def spark_check(seeds, trials_count, parallelism):
    """runtime-ml as it ships vs driven by the when-free rule, on local[parallelism], tracking
    off."""
    from common import quiet_logs, spark_session
    from hyperopt import SparkTrials, fmin, tpe

    from runtime_ml.driver import spark_fmin

    ships = spark_fmin.proposes_ahead
    quiet_logs()
    spark = spark_session(f"local[{parallelism}]")

    def timed(objective):
        def run(params):
            # 0.05-0.5 s, fixed per point (log-normal as in the simulation, scaled)
            u = (hash(tuple(sorted(params.items()))) % 10_000) / 10_000
            time.sleep(0.05 + 0.45 * u)
            return objective(params)

        return run

    best = {}
    started = time.monotonic()
    for name in ("branin", "hartmann6"):
        for seed in range(seeds):
            for policy in ("stock", "when-free"):
                spark_fmin.proposes_ahead = ships if policy == "stock" else (lambda *_: False)
                trials = SparkTrials(parallelism=parallelism, spark_session=spark)
                fmin(timed(OBJECTIVES[name]), space_of(name), tpe.suggest, trials_count,
                     trials=trials, rstate=np.random.default_rng(seed), show_progressbar=False)
                best.setdefault((name, policy), []).append(min(trials.losses()))
    spark_fmin.proposes_ahead = ships
    spark.stop()
    return best, time.monotonic() - started


# ------------------------------------------------------------------ report

def u_test(a, b):
    from scipy.stats import mannwhitneyu

    if a == b:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def summarize(best, names, parallelisms):
    rows, verdicts = [], {}
    for name in names:
        reference = best[(name, "sequential", 1)]
        rows.append([name, "-", "sequential", f"{median(reference):.4f}",
                     f"{percentile(reference, 0.25):.4f}", f"{percentile(reference, 0.75):.4f}",
                     f"{np.mean(reference):.4f}", "", ""])
        for p in parallelisms:
            stock = best[(name, "stock", p)]
            for policy in POLICIES:
                values = best.get((name, policy, p))
                if values is None:
                    continue
                p_value = u_test(values, stock) if policy != "stock" else None
                verdict = ""
                if p_value is not None and p_value < 0.05:
                    verdict = "better" if median(values) < median(stock) else "WORSE"
                verdicts[(name, policy, p)] = (np.mean(values) - np.mean(stock), verdict)
                rows.append([name, p, policy, f"{median(values):.4f}",
                             f"{percentile(values, 0.25):.4f}", f"{percentile(values, 0.75):.4f}",
                             f"{np.mean(values):.4f}",
                             "" if p_value is None else f"{p_value:.3f}", verdict])
    print_table(["objective", "p", "policy", "median best", "q1", "q3", "mean",
                 "U p vs stock", "vs stock"], rows)
    return verdicts


def parallel_cost(best, names, parallelisms):
    """What parallel hyperopt loses: stock at each parallelism against sequential hyperopt."""
    print("\nwhat parallelism costs: stock's median best loss / sequential's (U test p; "
          "below 1 is better than sequential)")
    rows = []
    for name in names:
        reference = best[(name, "sequential", 1)]
        row = [name]
        for p in parallelisms:
            values = best[(name, "stock", p)]
            ratio = median(values) / median(reference) if median(reference) else float("nan")
            row.append(f"{ratio:.2f} ({u_test(values, reference):.2f})")
        rows.append(row)
    print_table(["objective", *[f"p={p}" for p in parallelisms]], rows)


def adoption(verdicts, parallelisms):
    """Per policy: better on average (mean best loss relative to stock's, over every objective and
    parallelism) and never worse with significance."""
    print("\nadoption rule: adopt a policy only if never significantly worse than stock "
          "(U, p < 0.05) on any row and better on average")
    for policy in POLICIES[1:]:
        rows = [(key, value) for key, value in verdicts.items() if key[1] == policy]
        worse = [f"{k[0]}@p={k[2]}" for k, (_, v) in rows if v == "WORSE"]
        better = [f"{k[0]}@p={k[2]}" for k, (_, v) in rows if v == "better"]
        wins = sum(1 for _, (delta, _) in rows if delta < 0)
        print(f"  {policy:17} significantly better: {len(better):2} {better}")
        print(f"  {'':17} significantly worse:  {len(worse):2} {worse}")
        print(f"  {'':17} lower mean than stock in {wins} of {len(rows)} rows")


def plot(best, names, parallelisms):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    figure, axes = plt.subplots(len(names), 1, figsize=(12, 3.2 * len(names)))
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        groups, labels = [best[(name, "sequential", 1)]], ["seq"]
        for p in parallelisms:
            for policy in POLICIES:
                if (name, policy, p) in best:
                    groups.append(best[(name, policy, p)])
                    labels.append(f"{policy}\np={p}")
        ax.boxplot([[max(v, 1e-4) for v in group] for group in groups])
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=6)
        ax.set_yscale("log")
        ax.set_title(f"{name}: best loss (regret, floored at 1e-4) per seed")
    figure.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "search_quality.png"
    figure.savefig(path)
    plt.close(figure)
    print(f"plot: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 4, 8, 32])
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES))
    parser.add_argument("--sigma", type=float, default=0.75,
                        help="spread of the log-normal trial durations")
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--spark", action="store_true", help="also the real-Spark check")
    parser.add_argument("--spark-seeds", type=int, default=10)
    parser.add_argument("--report", action="store_true",
                        help="print the tables of the last run (results/search_quality.json)")
    options = parser.parse_args()
    if options.report:
        with open(RESULTS / "search_quality.json") as saved:
            best = {}
            for key, values in json.load(saved).items():
                name, policy, p = key.split("|")
                best[(name, policy, int(p))] = values
        names = [n for n in OBJECTIVES if (n, "sequential", 1) in best]
        parallelisms = sorted({k[2] for k in best if k[1] == "stock"})
        verdicts = summarize(best, names, parallelisms)
        adoption(verdicts, parallelisms)
        parallel_cost(best, names, parallelisms)
        plot(best, names, parallelisms)
        return 0

    jobs = []
    for name in options.objectives:
        for seed in range(options.seeds):
            jobs.append((name, "sequential", 1, seed, options.trials, options.sigma))
            for p in options.parallelism:
                for policy in (ABOVE_ONE if p > 1 else AT_ONE):
                    jobs.append((name, policy, p, seed, options.trials, options.sigma))
    started = time.monotonic()
    losses = {}
    with Pool(options.processes) as pool:
        for done, (job, values) in enumerate(pool.imap_unordered(run_one, jobs, chunksize=2), 1):
            losses[job] = values
            if done % 100 == 0:
                print(f"  {done}/{len(jobs)} searches, {time.monotonic() - started:.0f} s",
                      flush=True)
    best = {}
    for (name, policy, p, _seed, _, _), values in sorted(losses.items(), key=lambda kv: kv[0][3]):
        best.setdefault((name, policy, p), []).append(min(values))

    print(f"\nsearch quality: best loss (regret, 0 is the optimum) after {options.trials} tpe "
          f"trials, {options.seeds} seeds, durations log-normal(0, {options.sigma}); "
          f"{len(jobs)} searches in {time.monotonic() - started:.0f} s")
    same = sum(losses[(n, "runtime-ml", 1, s, options.trials, options.sigma)] ==
               losses[(n, "sequential", 1, s, options.trials, options.sigma)]
               for n in options.objectives for s in range(options.seeds)) \
        if 1 in options.parallelism else 0
    print(f"runtime-ml at parallelism 1 gave sequential hyperopt's trials in {same} of "
          f"{len(options.objectives) * options.seeds} searches")
    verdicts = summarize(best, options.objectives, options.parallelism)
    adoption(verdicts, options.parallelism)
    parallel_cost(best, options.objectives, options.parallelism)
    plot(best, options.objectives, options.parallelism)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "search_quality.json", "w") as out:
        json.dump({"|".join(map(str, k)): v for k, v in best.items()}, out)

    if options.spark:
        p = 4
        real, seconds = spark_check(options.spark_seeds, options.trials, p)
        print(f"\nreal Spark, local[{p}], {options.trials} trials of 0.05-0.5 s, "
              f"{options.spark_seeds} seeds, tracking off ({seconds:.0f} s); stock: runtime-ml "
              f"as it ships at parallelism {p}")
        rows = []
        for name in ("branin", "hartmann6"):
            for policy in ("stock", "when-free"):
                values = real[(name, policy)]
                rows.append([name, policy, f"{median(values):.4f}",
                             f"{percentile(values, 0.25):.4f}", f"{percentile(values, 0.75):.4f}",
                             f"{u_test(values, real[(name, 'stock')]):.3f}"
                             if policy != "stock" else ""])
        print_table(["objective", "policy", "median best", "q1", "q3", "U p vs stock"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
