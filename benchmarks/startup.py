"""Interpreter start-up with the runtime-ml hook installed vs without (`python -c pass`).

Both interpreters are fresh venvs that see the same packages; one has the hook's .pth file.
Runs alternate, so drift on the machine hits both alike. Target: median ratio <= 1.05.
Usage: python benchmarks/startup.py [--runs N] [--plot PATH]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import save_plot  # noqa: E402
from conftest import _bare_python  # noqa: E402  (same venv recipe as the tests)


def time_start(python):
    started = time.perf_counter()
    subprocess.run([python, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        plain = _bare_python(Path(scratch, "plain"))
        hooked = _bare_python(Path(scratch, "hooked"))
        subprocess.run([sys.executable, "-m", "runtime_ml.cli", "install-hook", "--python", hooked],
                       check=True, stdout=subprocess.DEVNULL)
        check = subprocess.run([hooked, "-c", "import hyperopt, runtime_ml; print(runtime_ml.is_active())"],
                               capture_output=True, text=True, check=True)
        assert check.stdout.strip() == "True", "the hook did not patch hyperopt"
        for python in (plain, hooked):  # warm the page cache and .pyc files
            for _ in range(5):
                time_start(python)
        samples = {"without hook": [], "with hook": []}
        for _ in range(options.runs):
            samples["without hook"].append(time_start(plain))
            samples["with hook"].append(time_start(hooked))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = medians["with hook"] / medians["without hook"]
    print(f"interpreter start-up, `python -c pass`, {options.runs} alternating runs each")
    print(f"{'':14}{'median ms':>10}{'p90 ms':>10}")
    for name, values in samples.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{name:14}{medians[name] * 1000:10.2f}{p90 * 1000:10.2f}")
    print(f"ratio with/without: {ratio:.3f} (target <= 1.05)")
    save_plot("startup", lambda axes: (
        axes.boxplot([[v * 1000 for v in values] for values in samples.values()],
                     tick_labels=list(samples)),
        axes.set_ylabel("start-up time (ms)"),
        axes.set_title("python -c pass: with and without the runtime-ml hook")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
