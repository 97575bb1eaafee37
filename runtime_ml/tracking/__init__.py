"""MLflow tracking of SparkTrials fmin calls, on the driver: parent and child runs, resume,
credentials. Nothing here imports runtime_ml.driver (tests/test_layout.py)."""
