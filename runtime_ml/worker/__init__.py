"""What runs inside a Python worker on an executor: the trial's task, its MLflow run, the call of the
objective. It imports nothing of runtime_ml.driver or runtime_ml.tracking (tests/test_layout.py)."""
