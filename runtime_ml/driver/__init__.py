"""The driver side of a SparkTrials fmin: the patch, the fmin call, dispatch and launchers, the
session seam (classic and Spark Connect), cluster facts, parallelism and validation."""
