"""What runs when an interpreter starts (the .pth hook, import hooks, the zip step).

Nothing here imports hyperopt, pyspark or mlflow, nor runtime_ml.driver, worker or tracking
(tests/test_layout.py)."""
