#!/usr/bin/env bash
# install-runtime-ml.sh: the cluster init script. Run it on every node (driver and workers) before
# Spark starts: it installs runtime-ml into the Python that Spark uses, installs the startup hook,
# and merges runtime-ml's keys into spark-defaults.conf. Running it twice leaves the node exactly as
# after once; --uninstall reverses it. See --help.
set -eu
set -o pipefail

BLOCK_BEGIN="# >>> runtime-ml (managed by install-runtime-ml.sh; this block is rewritten on every run) >>>"
BLOCK_END="# <<< runtime-ml <<<"

usage() {
    cat <<'EOF'
Usage: install-runtime-ml.sh [options]

Installs runtime-ml into the Python that Spark uses, installs its startup hook, and merges its
Spark conf keys into spark-defaults.conf (inside a marked block; keys you set outside the block
are kept as they are).

Options:
  --python PATH          the interpreter Spark uses (default: $PYSPARK_PYTHON, else python3)
  --wheelhouse DIR       install offline from the wheels in DIR (default: from PyPI)
  --version VERSION      install this runtime-ml version (default: the newest available)
  --spark-conf-dir DIR   where spark-defaults.conf lives (default: $SPARK_CONF_DIR, else $SPARK_HOME/conf)
  --tracking-uri URI     MLflow tracking URI for the driver (spark-env.sh) and the executors
                         (spark.executorEnv.MLFLOW_TRACKING_URI). A user:password@ part is split
                         out of it and stored as credentials (below), never in the URI
  --tracking-username USER        MLFLOW_TRACKING_USERNAME (for a password from a file)
  --tracking-password-file FILE   MLFLOW_TRACKING_PASSWORD, read from FILE
  --tracking-token-file FILE      MLFLOW_TRACKING_TOKEN, read from FILE
  --tracking-credentials-from-env take MLFLOW_TRACKING_USERNAME/_PASSWORD/_TOKEN from this
                                  script's environment
  --credentials-owner USER        owner of the credentials file (default: who runs this script);
                                  Spark's processes must run as that user to read it
                         Credentials go only to <spark conf dir>/runtime-ml-tracking-credentials.sh
                         (mode 0600, sourced by spark-env.sh); logs show URIs as user:***@host
  --log-file PATH        also append the log here (default: /var/log/runtime-ml-init.log when
                         writable, else $TMPDIR/runtime-ml-init.log)
  --uninstall            remove the hook, the conf blocks and the package
  -h, --help             this help
EOF
}

log() {
    line="$(date -u '+%Y-%m-%dT%H:%M:%SZ') runtime-ml-init: $*"
    echo "$line"
    if [ -n "${LOG_FILE:-}" ]; then echo "$line" >>"$LOG_FILE" 2>/dev/null || true; fi
}

fail() {
    log "ERROR: $*"
    exit 1
}

PYTHON_BIN="${PYSPARK_PYTHON:-python3}"
WHEELHOUSE=""
VERSION=""
CONF_DIR="${SPARK_CONF_DIR:-}"
TRACKING_URI=""
TRACKING_USERNAME=""
PASSWORD_FILE=""
TOKEN_FILE=""
CREDENTIALS_FROM_ENV=0
CREDENTIALS_OWNER=""
LOG_FILE=""
UNINSTALL=0

while [ $# -gt 0 ]; do
    case "$1" in
        --python) PYTHON_BIN="${2:?--python needs a path}"; shift 2 ;;
        --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a directory}"; shift 2 ;;
        --version) VERSION="${2:?--version needs a version}"; shift 2 ;;
        --spark-conf-dir) CONF_DIR="${2:?--spark-conf-dir needs a directory}"; shift 2 ;;
        --tracking-uri) TRACKING_URI="${2:?--tracking-uri needs a URI}"; shift 2 ;;
        --tracking-username) TRACKING_USERNAME="${2:?--tracking-username needs a user}"; shift 2 ;;
        --tracking-password-file) PASSWORD_FILE="${2:?--tracking-password-file needs a file}"; shift 2 ;;
        --tracking-token-file) TOKEN_FILE="${2:?--tracking-token-file needs a file}"; shift 2 ;;
        --tracking-credentials-from-env) CREDENTIALS_FROM_ENV=1; shift ;;
        --credentials-owner) CREDENTIALS_OWNER="${2:?--credentials-owner needs a user}"; shift 2 ;;
        --log-file) LOG_FILE="${2:?--log-file needs a path}"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install-runtime-ml.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "$LOG_FILE" ]; then
    if touch /var/log/runtime-ml-init.log 2>/dev/null; then
        LOG_FILE=/var/log/runtime-ml-init.log
    else
        LOG_FILE="${TMPDIR:-/tmp}/runtime-ml-init.log"
    fi
fi

# ---------------------------------------------------------------- checks, before changing anything
command -v "$PYTHON_BIN" >/dev/null 2>&1 || fail "no such Python: $PYTHON_BIN (pass --python PATH or set PYSPARK_PYTHON)"
"$PYTHON_BIN" -c 'import sys' >/dev/null 2>&1 || fail "cannot run Python: $PYTHON_BIN"
PYTHON_BIN="$(command -v "$PYTHON_BIN")"

if [ -z "$CONF_DIR" ]; then
    [ -n "${SPARK_HOME:-}" ] || fail "SPARK_HOME is unset and no --spark-conf-dir was given"
    CONF_DIR="$SPARK_HOME/conf"
fi
mkdir -p "$CONF_DIR" 2>/dev/null || fail "cannot create the Spark conf dir $CONF_DIR"
[ -w "$CONF_DIR" ] || fail "the Spark conf dir $CONF_DIR is not writable"
DEFAULTS="$CONF_DIR/spark-defaults.conf"
SPARK_ENV="$CONF_DIR/spark-env.sh"
CREDENTIALS="$CONF_DIR/runtime-ml-tracking-credentials.sh"

if [ "$UNINSTALL" -eq 0 ]; then
    if [ -z "$TRACKING_URI" ] && { [ -n "$TRACKING_USERNAME$PASSWORD_FILE$TOKEN_FILE" ] || [ "$CREDENTIALS_FROM_ENV" -eq 1 ]; }; then
        fail "tracking credentials need --tracking-uri"
    fi
    for secret_file in "$PASSWORD_FILE" "$TOKEN_FILE"; do
        [ -z "$secret_file" ] || [ -r "$secret_file" ] || fail "cannot read the credentials file $secret_file"
    done
    if [ -n "$CREDENTIALS_OWNER" ]; then
        id "$CREDENTIALS_OWNER" >/dev/null 2>&1 || fail "no such user for --credentials-owner: $CREDENTIALS_OWNER"
    fi
fi

if [ -n "$WHEELHOUSE" ] && [ "$UNINSTALL" -eq 0 ]; then
    [ -d "$WHEELHOUSE" ] || fail "wheelhouse $WHEELHOUSE is not a directory"
    pattern="runtime_ml-${VERSION:-*}-*.whl"
    found=$(find "$WHEELHOUSE" -maxdepth 1 -name "$pattern" | head -n 1)
    [ -n "$found" ] || fail "wheelhouse $WHEELHOUSE has no wheel matching $pattern"
fi

# Writes $1 with its runtime-ml block replaced by the lines on stdin (or removed when stdin is
# empty), keeping everything outside the block byte for byte.
replace_block() {
    target="$1"
    body="$(cat)"
    tmp="$(mktemp "$target.XXXXXX")"
    if [ -f "$target" ]; then
        awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" '
            $0 == begin { skipping = 1; next }
            $0 == end { skipping = 0; next }
            !skipping { print }
        ' "$target" >"$tmp"
    fi
    if [ -n "$body" ]; then
        { echo "$BLOCK_BEGIN"; echo "$body"; echo "$BLOCK_END"; } >>"$tmp"
    fi
    if [ -f "$target" ]; then chmod --reference="$target" "$tmp" 2>/dev/null || true; fi
    if [ -s "$tmp" ]; then
        mv "$tmp" "$target"
    else  # nothing but our block was there: leave no empty file behind
        rm -f "$tmp" "$target"
    fi
}

# Keys set outside our block, in spark-defaults.conf syntax (key, whitespace or '=', value).
admin_keys() {
    [ -f "$DEFAULTS" ] || return 0
    awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" '
        $0 == begin { skipping = 1; next }
        $0 == end { skipping = 0; next }
        skipping || /^[[:space:]]*(#|$)/ { next }
        { sub(/^[[:space:]]+/, ""); split($0, parts, /[[:space:]=]+/); print parts[1] }
    ' "$DEFAULTS"
}

# ---------------------------------------------------------------- uninstall
if [ "$UNINSTALL" -eq 1 ]; then
    log "uninstalling runtime-ml from $PYTHON_BIN"
    if "$PYTHON_BIN" -c 'import runtime_ml' >/dev/null 2>&1; then
        hook_said=$("$PYTHON_BIN" -m runtime_ml.cli uninstall-hook --python "$PYTHON_BIN" 2>&1) \
            || fail "could not remove the startup hook: ${hook_said##*$'\n'}"
        log "$hook_said"
    fi
    if [ -f "$DEFAULTS" ]; then replace_block "$DEFAULTS" </dev/null; log "removed the runtime-ml block from $DEFAULTS"; fi
    if [ -f "$SPARK_ENV" ]; then replace_block "$SPARK_ENV" </dev/null; log "removed the runtime-ml block from $SPARK_ENV"; fi
    if [ -f "$CREDENTIALS" ]; then rm -f "$CREDENTIALS"; log "removed the tracking credentials $CREDENTIALS"; fi
    if "$PYTHON_BIN" -m pip show runtime-ml >/dev/null 2>&1; then
        "$PYTHON_BIN" -m pip uninstall -y -q runtime-ml >>"$LOG_FILE" 2>&1 || fail "pip could not uninstall runtime-ml (see $LOG_FILE)"
        log "uninstalled the runtime-ml package"
    fi
    log "done"
    exit 0
fi

# ---------------------------------------------------------------- install
requirement="runtime-ml${VERSION:+==$VERSION}"
log "installing $requirement into $PYTHON_BIN${WHEELHOUSE:+ (offline, from $WHEELHOUSE)}"
if [ -n "$WHEELHOUSE" ]; then
    set -- --no-index --find-links "$WHEELHOUSE"
else
    set --
fi
"$PYTHON_BIN" -m pip install --disable-pip-version-check -q "$@" "$requirement" >>"$LOG_FILE" 2>&1 \
    || fail "pip could not install $requirement${WHEELHOUSE:+ from $WHEELHOUSE} (see $LOG_FILE)"
installed=$("$PYTHON_BIN" -c 'import runtime_ml; print(runtime_ml.__version__)' 2>&1) \
    || fail "runtime-ml is not importable by $PYTHON_BIN after pip install: ${installed##*$'\n'}"
log "installed runtime-ml $installed"

hook_said=$("$PYTHON_BIN" -m runtime_ml.cli install-hook --python "$PYTHON_BIN" 2>&1) \
    || fail "could not install the startup hook: ${hook_said##*$'\n'}"
log "$hook_said"

# The URI and credentials go through the environment and a mode-0600 file, never a command line
# or a log line: the helper prints the URI to store (without user:password@) and what to log.
STORED_URI=""
if [ -n "$TRACKING_URI" ]; then
    set -- --file "$CREDENTIALS"
    [ -z "$TRACKING_USERNAME" ] || set -- "$@" --username "$TRACKING_USERNAME"
    [ -z "$PASSWORD_FILE" ] || set -- "$@" --password-file "$PASSWORD_FILE"
    [ -z "$TOKEN_FILE" ] || set -- "$@" --token-file "$TOKEN_FILE"
    [ "$CREDENTIALS_FROM_ENV" -eq 0 ] || set -- "$@" --from-env
    [ -z "$CREDENTIALS_OWNER" ] || set -- "$@" --owner "$CREDENTIALS_OWNER"
    problem="$(mktemp)"
    said=$(RUNTIME_ML_TRACKING_URI="$TRACKING_URI" "$PYTHON_BIN" -m runtime_ml.cli tracking-credentials "$@" 2>"$problem") \
        || { said="$(tail -n 1 "$problem")"; rm -f "$problem"; fail "tracking credentials: ${said#runtime-ml: }"; }
    rm -f "$problem"
    STORED_URI="${said%%$'\n'*}"
    TRACKING_SAID="${said#*$'\n'}"
fi
TRACKING_URI=""  # from here on only the URI without credentials is in this script

kept=" $(admin_keys | tr '\n' ' ') "
block=""
add_line() { block="${block:+$block
}$1"; }
ours="$("$PYTHON_BIN" -m runtime_ml.cli spark-defaults)"
if [ -n "$STORED_URI" ]; then
    ours="$ours
spark.executorEnv.MLFLOW_TRACKING_URI $STORED_URI"
fi
while IFS= read -r line; do
    case "$line" in
        '') continue ;;
        '#'*) add_line "$line"; continue ;;
    esac
    key="${line%% *}"
    case "$kept" in
        *" $key "*) log "kept the admin's own setting of $key in $DEFAULTS" ;;
        *) add_line "$line" ;;
    esac
done <<EOF
$ours
EOF
printf '%s\n' "$block" | replace_block "$DEFAULTS"
log "merged runtime-ml's keys into $DEFAULTS"

# $1 in single quotes for a shell file
quoted() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
if [ -n "$STORED_URI" ]; then
    {
        printf 'export MLFLOW_TRACKING_URI=%s\n' "$(quoted "$STORED_URI")"
        if [ -f "$CREDENTIALS" ]; then
            printf 'if [ -r %s ]; then . %s; fi\n' "$(quoted "$CREDENTIALS")" "$(quoted "$CREDENTIALS")"
        fi
    } | replace_block "$SPARK_ENV"
    log "$TRACKING_SAID; set for the driver ($SPARK_ENV) and the executors ($DEFAULTS)"
else
    [ ! -f "$SPARK_ENV" ] || replace_block "$SPARK_ENV" </dev/null
    [ ! -f "$CREDENTIALS" ] || { rm -f "$CREDENTIALS"; log "removed the tracking credentials $CREDENTIALS"; }
fi
log "done"
