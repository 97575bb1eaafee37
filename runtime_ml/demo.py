"""`make demo`: the seeds' workflow, run as plain user code on local Spark.

Tunes a scikit-learn LogisticRegression on the digits data set that ships with scikit-learn, with
`fmin(..., trials=SparkTrials())`. Nothing in the tuning code mentions runtime-ml: the startup hook
installed in this interpreter does the rest. Only the set-up (local Spark, an embedded MLflow store
in `work/`) is demo-specific.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional


def tune(max_evals):
    # ---- unmodified user code, as in the seeds ----
    import warnings

    from hyperopt import SparkTrials, fmin, hp, space_eval, tpe

    def train(params):
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_score

        warnings.filterwarnings("ignore")  # convergence warnings of the short saga runs
        X, y = load_digits(return_X_y=True)
        model = LogisticRegression(
            l1_ratio=1.0 if params["penalty"] == "l1" else 0.0,
            C=1.0 / params["regParam"],
            solver="saga",
            max_iter=100,
            tol=1e-2,
        )
        accuracy = cross_val_score(model, X / 16.0, y, cv=3).mean()
        return -accuracy

    space = {
        "penalty": hp.choice("penalty", ["l1", "l2"]),
        "regParam": hp.loguniform("regParam", -10, 0),
    }
    best = fmin(fn=train, space=space, algo=tpe.suggest, max_evals=max_evals, trials=SparkTrials())
    return space_eval(space, best)


def latest_parent_run(tracking_uri):
    """The newest run that runtime-ml's tracking created, or None (tracking off or unavailable)."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(
            experiments,
            filter_string="tags.runSource = 'hyperoptAutoTracking' and tags.fmin_uuid != ''",
            order_by=["attributes.start_time DESC"],
            max_results=50,
        )
    except Exception:
        return None
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return parents[0] if parents else None


UI_PORT = 5000  # mlflow ui's default


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-evals", type=int, default=32)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work-dir", default=str(Path.cwd() / "work"))
    options = parser.parse_args(argv)

    work = Path(options.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    import logging

    import mlflow
    from pyspark.sql import SparkSession

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("runtime_ml").setLevel(logging.INFO)

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment("runtime-ml-demo")
    spark = (
        SparkSession.builder.master(options.master)
        .appName("runtime-ml demo")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        best = tune(options.max_evals)
    finally:
        spark.stop()

    print()
    print(f"best parameters: {best}")
    parent = latest_parent_run(os.environ["MLFLOW_TRACKING_URI"])
    if parent is None:
        print("MLflow: no runtime-ml parent run was recorded (tracking off or unavailable).")
    else:
        print(f"MLflow parent run: {parent.info.run_id} (experiment runtime-ml-demo)")
    print(f"See the runs: {Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri "
          f"{os.environ['MLFLOW_TRACKING_URI']} --host 127.0.0.1 --port {UI_PORT}")
    if parent is not None:
        print(f"then open {ui_link(parent.info.experiment_id)}")
    return 0


def ui_link(experiment_id: str) -> str:
    """The experiment's runs in the `mlflow ui` the demo names (MLflow 3's UI would open its GenAI
    overview without the machine-learning workflow in the link)."""
    from runtime_ml.compat import versions
    from runtime_ml.tracking.records import runs_view_link

    genai_ui = versions.mlflow_ui_has_genai_view(versions.installed_version("mlflow"))
    return runs_view_link(f"http://127.0.0.1:{UI_PORT}", experiment_id, genai_ui) or ""


if __name__ == "__main__":
    sys.exit(main())
