"""PySpark's processes import the installed pyspark and py4j, not Spark's zips of the same files."""

import os
import zipfile
from types import SimpleNamespace

from conftest import run_python

from runtime_ml.startup import hook
from runtime_ml.startup.pyspark_zips import matches_installed, redundant_zips, redundant_zips_last


def test_recorded_unchanged_zips_go_last_and_changed_or_unknown_ones_stay():
    stats = {"/spark/pyspark.zip": (10, 5), "/spark/py4j-src.zip": (7, 99), "/user/deps.zip": (1, 1)}
    recorded = {"/spark/pyspark.zip": [10, 5], "/spark/py4j-src.zip": [7, 3]}  # py4j changed since

    def stat(path):
        size, mtime = stats[path]
        return SimpleNamespace(st_size=size, st_mtime_ns=mtime)

    path = ["/work", "/spark/pyspark.zip", "/spark/py4j-src.zip", "/user/deps.zip", "/site"]
    assert redundant_zips_last(path, recorded, stat=stat, realpath=lambda p: p) == [
        "/work", "/spark/py4j-src.zip", "/user/deps.zip", "/site", "/spark/pyspark.zip"]


def make_package(site, files):
    for name, text in files.items():
        target = site.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return str(path)


def test_a_zip_matches_the_installation_when_every_file_both_have_is_the_same(tmp_path):
    installed = {"pkg/__init__.py": "", "pkg/version.py": "__version__ = '1.0'\n",
                 "pkg/worker.py": "def main(): pass\n"}
    make_package(tmp_path / "site", installed)
    with_tests = dict(installed, **{"pkg/tests/test_worker.py": "def test(): pass\n"})
    assert matches_installed(make_zip(tmp_path / "same.zip", with_tests), [str(tmp_path / "site")])

    patched = dict(installed, **{"pkg/worker.py": "def main(): patched()\n"})
    assert not matches_installed(make_zip(tmp_path / "patched.zip", patched),
                                 [str(tmp_path / "site")])
    no_version = {"pkg/other.py": "x = 1\n"}
    assert not matches_installed(make_zip(tmp_path / "other.zip", no_version),
                                 [str(tmp_path / "site")])


def test_install_time_records_the_installed_pysparks_own_zips_with_size_and_mtime(tmp_path):
    files = {"pyspark/__init__.py": "", "pyspark/version.py": "__version__ = '9.9.9'\n"}
    make_package(tmp_path / "site", files)
    lib = tmp_path / "site" / "pyspark" / "python" / "lib"
    lib.mkdir(parents=True)
    zip_path = make_zip(lib / "pyspark.zip", files)
    make_zip(lib / "unrelated.zip", files)
    found = redundant_zips(spark_home="", site_dirs=[str(tmp_path / "site")])
    stat = os.stat(zip_path)
    assert found == {os.path.realpath(zip_path): [stat.st_size, stat.st_mtime_ns]}


def test_a_process_with_sparks_zip_on_its_path_imports_the_installed_pyspark():
    import pyspark

    zip_path = os.path.join(os.path.dirname(pyspark.__file__), "python", "lib", "pyspark.zip")
    assert hook.pth_line(redundant_zips()) != hook.PTH_LINE, "the installed pyspark's zip matches"
    from runtime_ml.doctor import hook_state

    assert hook_state()["installed"], "this interpreter's hook is out of date: runtime-ml install-hook"
    code = "import pyspark, sys; print(pyspark.__file__); print(sys.path[-1])"
    hooked = run_python(code, env={"PYTHONPATH": zip_path})
    stock = run_python(code, env={"PYTHONPATH": zip_path, "RUNTIME_ML_DISABLED": "1"})
    assert ".zip" not in hooked.stdout.splitlines()[0] and hooked.stdout.splitlines()[1] == \
        zip_path, hooked.stderr
    assert stock.stdout.splitlines()[0].startswith(zip_path), stock.stderr


def test_pyspark_workers_run_the_installed_pyspark(spark):
    def where(_):
        import pyspark

        yield pyspark.__file__

    [location] = spark.sparkContext.parallelize([0], 1).mapPartitions(where).collect()
    assert ".zip" not in location and location.endswith(os.path.join("pyspark", "__init__.py"))
