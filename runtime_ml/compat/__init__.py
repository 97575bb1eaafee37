"""The support matrix: which code path each supported version of hyperopt, PySpark and MLflow takes."""
