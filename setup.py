import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "runtime_ml" / "__init__.py").read_text()).group(1)

setup(
    name="runtime-ml",
    version=VERSION,
    description="Databricks-Runtime-ML-style Hyperopt SparkTrials (MLflow tracking, cluster-fitted "
    "parallelism) for any Spark cluster, installed by an init script, with zero code change.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["runtime_ml", "runtime_ml.*"]),
    # The one statement of the Python versions runtime-ml supports: ruff and mypy check for the
    # oldest (the Makefile reads it from here), the README points here.
    python_requires=">=3.10",
    # The support matrix (README): the lower bounds are tested by `make test-compat`,
    # the newest pins by `make test` (constraints.txt).
    install_requires=[
        "pyspark>=3.5,<5",
        "hyperopt>=0.2.7,<0.4",
        "mlflow>=2.9,<4",
        "py4j>=0.10.9.7",
        "cloudpickle>=2.0",
        "packaging",  # the support matrix's version ranges (compat/versions.py)
    ],
    entry_points={"console_scripts": ["runtime-ml=runtime_ml.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
