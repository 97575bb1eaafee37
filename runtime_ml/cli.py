"""The `runtime-ml` command."""

import argparse
import json
import os
import subprocess
import sys
from typing import List, Optional

from runtime_ml.startup import hook


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _site_packages_of(python, with_zips=False):
    """The purelib directory of `python`, after checking that it can import runtime_ml; with
    `with_zips`, also the Spark zips its installed pyspark makes redundant (see pyspark_zips)."""
    probe = (
        "import json, sysconfig, runtime_ml; "
        "from runtime_ml.startup.pyspark_zips import redundant_zips; "
        "print(json.dumps([sysconfig.get_paths()['purelib'], "
        f"redundant_zips() if {with_zips!r} else {{}}]))"
    )
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise CliError(f"no such Python interpreter: {python}") from None
    except PermissionError:
        raise CliError(f"cannot run {python}: permission denied") from None
    if done.returncode != 0:
        if "runtime_ml" in done.stderr:
            raise CliError(
                f"{python} cannot import runtime_ml; install runtime-ml into it first "
                f"({python} -m pip install runtime-ml)"
            )
        raise CliError(f"{python} failed: {done.stderr.strip().splitlines()[-1:]}")
    site_dir, zips = json.loads(done.stdout.strip().splitlines()[-1])
    return (site_dir, zips) if with_zips else site_dir


def install_hook(python):
    site_dir, zips = _site_packages_of(python, with_zips=True)
    path = os.path.join(site_dir, hook.PTH_NAME)
    line = hook.pth_line(zips)
    dropped = (f"PySpark's processes import {', '.join(sorted(os.path.basename(z) for z in zips))}"
               " from the installed packages (same files)")
    if os.path.exists(path):
        with open(path) as existing:
            if existing.read() == line:
                print(f"runtime-ml hook already installed: {path}" + (f"; {dropped}" if zips
                                                                      else ""))
                return path
    try:
        with open(path, "w") as out:
            out.write(line)
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from None
    print(f"runtime-ml hook installed: {path}" + (f"; {dropped}" if zips else ""))
    return path


def uninstall_hook(python):
    site_dir = _site_packages_of(python)
    path = os.path.join(site_dir, hook.PTH_NAME)
    if not os.path.exists(path):
        print(f"runtime-ml hook not installed (no {path})")
        return path
    try:
        os.remove(path)
    except OSError as error:
        raise CliError(f"cannot remove {path}: {error.strerror}") from None
    print(f"runtime-ml hook removed: {path}")
    return path


def build_parser():
    parser = argparse.ArgumentParser(
        prog="runtime-ml",
        description="Hyperopt SparkTrials with MLflow tracking and cluster-fitted parallelism.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("install-hook", "make every process of a Python interpreter load runtime-ml"),
        ("uninstall-hook", "remove the startup hook from a Python interpreter"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--python",
            default=sys.executable,
            help="the interpreter whose site-packages get the hook (default: this one)",
        )
    commands.add_parser(
        "spark-defaults",
        help="print runtime-ml's Spark conf keys and defaults as spark-defaults.conf lines",
    )
    secrets = commands.add_parser(
        "tracking-credentials",
        help="for install-runtime-ml.sh: split credentials out of the tracking URI given in "
             "RUNTIME_ML_TRACKING_URI, write them to a mode-0600 file, print the URI to store and "
             "a log line without secrets",
    )
    secrets.add_argument("--file", required=True, help="the credentials file to write (or remove)")
    secrets.add_argument("--username", help="MLFLOW_TRACKING_USERNAME")
    secrets.add_argument("--password-file", help="a file holding MLFLOW_TRACKING_PASSWORD")
    secrets.add_argument("--token-file", help="a file holding MLFLOW_TRACKING_TOKEN")
    secrets.add_argument("--from-env", action="store_true",
                         help="take MLFLOW_TRACKING_USERNAME/_PASSWORD/_TOKEN from the environment")
    secrets.add_argument("--owner", help="the user who owns the credentials file (who runs Spark)")
    doctor = commands.add_parser(
        "doctor",
        help="show the cluster facts, the parallelism SparkTrials would get, tracking and hook state",
        description="Creates nothing unless asked: --master starts a SparkSession to inspect it, "
                    "--remote connects to a Spark Connect server.",
    )
    target = doctor.add_mutually_exclusive_group()
    target.add_argument("--master", help="inspect this Spark master (e.g. 'local-cluster[2,2,1024]')")
    target.add_argument("--remote", help="inspect the cluster behind this Spark Connect server "
                        "(e.g. sc://host:15002, or local[2] for PySpark's local one)")
    doctor.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="Spark conf for the inspected session (repeatable)")
    doctor.add_argument("--parallelism", type=int, default=16,
                        help="the explicit request to explain (default 16)")
    doctor.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _conf_pairs(pairs):
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--conf {pair!r}: expected KEY=VALUE, e.g. --conf spark.task.cpus=2")
        parsed[key.strip()] = value.strip()
    return parsed


def doctor(options: argparse.Namespace) -> None:
    import json

    from runtime_ml.doctor import diagnose, render

    report = diagnose(options.master, _conf_pairs(options.conf), options.parallelism,
                      remote=options.remote)
    print(json.dumps(report, indent=2) if options.json else render(report))


def tracking_credentials(options):
    from runtime_ml.tracking import credentials

    uri = os.environ.get(TRACKING_URI_ENV, "")
    if not uri:
        raise CliError(f"tracking-credentials: {TRACKING_URI_ENV} is not set")
    try:
        stored, values, sources = credentials.gather(
            uri, options.username, options.password_file, options.token_file, options.from_env)
    except credentials.CredentialError as error:
        raise CliError(str(error)) from None
    try:
        if values:
            credentials.write_private(options.file, credentials.file_text(values), options.owner)
        elif os.path.exists(options.file):
            os.remove(options.file)
    except (OSError, LookupError) as error:
        raise CliError(f"cannot write {options.file}: {error}") from None
    print(stored)
    print(credentials.describe(uri, sources, options.file))


TRACKING_URI_ENV = "RUNTIME_ML_TRACKING_URI"


def main(argv: Optional[List[str]] = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        if options.command == "install-hook":
            install_hook(options.python)
        elif options.command == "uninstall-hook":
            uninstall_hook(options.python)
        elif options.command == "spark-defaults":
            from runtime_ml.conf import spark_defaults_text

            sys.stdout.write(spark_defaults_text())
        elif options.command == "doctor":
            doctor(options)
        elif options.command == "tracking-credentials":
            tracking_credentials(options)
    except CliError as error:
        print(f"runtime-ml: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
