"""PySpark's own zips on a Python worker's path, and when the installed pyspark makes them redundant.

Spark puts `$SPARK_HOME/python/lib/pyspark.zip` and `py4j-*-src.zip` first on the path of every
Python process it starts. A zip has no bytecode cache, so every PySpark daemon compiles pyspark from
source, and every new worker the modules it imports after the fork; on Python 3.10 and 3.11
`importlib.invalidate_caches()`, which PySpark's worker calls before every task, also re-reads the
directory of each zip. Measured here: about 0.2 s of CPU for each new worker before its first task,
a few ms per task after. When the interpreter has the same pyspark and py4j installed, the zips
add nothing but their tests, and the startup hook moves them to the end of the path
(hook.pth_line), so workers import the installed, compiled packages.

`redundant_zips` decides that once, when `runtime-ml install-hook` runs (the init script at
cluster start): every file the zip and the installation both have must have the same CRC-32, the
version file included. The hook records each such zip with its size and modification time and
leaves a zip where it is if it changed since (a Spark upgrade), or when RUNTIME_ML_DISABLED is set.
"""

import os
from typing import Dict, List, Optional

# The startup hook imports this module in PySpark's processes: zipfile and sysconfig are imported
# only by the install-time functions.


def spark_zips(spark_home):
    """The pyspark and py4j zips Spark puts on its Python processes' path, under `spark_home`."""
    lib = os.path.join(spark_home, "python", "lib")
    try:
        names = sorted(os.listdir(lib))
    except OSError:
        return []
    return [os.path.join(lib, name) for name in names
            if name == "pyspark.zip" or (name.startswith("py4j-") and name.endswith("-src.zip"))]


def matches_installed(zip_path, site_dirs):
    """True when the packages in the zip are installed under one of `site_dirs` in the same
    version: every file both have is byte for byte the same (the installed copy may lack the zip's
    tests and data files; they stay reachable in the zip)."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = [info for info in archive.infolist() if not info.is_dir()]
    except (OSError, zipfile.BadZipFile):
        return False
    versions_seen = 0
    for info in entries:
        for site in site_dirs:
            candidate = os.path.join(site, *info.filename.split("/"))
            if os.path.isfile(candidate):
                break
        else:
            continue
        with open(candidate, "rb") as installed:
            if zlib.crc32(installed.read()) != info.CRC:
                return False
        versions_seen += info.filename.count("/") == 1 and info.filename.endswith("/version.py")
    return versions_seen > 0


def redundant_zips(spark_home: Optional[str] = None,
                   site_dirs: Optional[List[str]] = None) -> Dict[str, List[int]]:
    """{real path: [size, mtime_ns]} of the Spark zips this interpreter's packages make redundant.

    Looks at the installed pyspark's own zips (pip's pyspark is its own SPARK_HOME) and those
    under `spark_home` (default: $SPARK_HOME)."""
    if site_dirs is None:
        import sysconfig

        paths = sysconfig.get_paths()
        site_dirs = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    homes = [os.path.join(site, "pyspark") for site in site_dirs]
    spark_home = spark_home if spark_home is not None else os.environ.get("SPARK_HOME")
    if spark_home:
        homes.append(spark_home)
    found = {}
    for home in homes:
        for path in spark_zips(home):
            real = os.path.realpath(path)
            if real not in found and matches_installed(real, site_dirs):
                stat = os.stat(real)
                found[real] = [stat.st_size, stat.st_mtime_ns]
    return found


def redundant_zips_last(path_entries, recorded, stat=os.stat, realpath=os.path.realpath):
    """`path_entries` with the recorded zips that are unchanged since they were recorded moved to
    the end: the installed packages come first, what only the zip has stays reachable."""

    def unchanged(entry):
        if not entry.endswith(".zip"):
            return False
        size_and_mtime = recorded.get(realpath(entry))
        if size_and_mtime is None:
            return False
        try:
            found = stat(entry)
        except OSError:
            return False
        return [found.st_size, found.st_mtime_ns] == list(size_and_mtime)

    redundant = [entry for entry in path_entries if unchanged(entry)]
    return [entry for entry in path_entries if entry not in redundant] + redundant


def move_redundant_zips_last(recorded):
    """The startup hook's step, in a process that has a recorded zip on its path."""
    import sys

    from runtime_ml.conf import runtime_disabled

    if not runtime_disabled():
        sys.path[:] = redundant_zips_last(sys.path, recorded)
