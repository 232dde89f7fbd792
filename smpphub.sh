#!/usr/bin/env bash
# Run the smpphub command from this checkout: `bash smpphub.sh demo`.
#
# Works on a fresh Debian/Ubuntu whose system Python refuses pip (PEP 668
# "externally-managed-environment"): the project lives in a virtual environment of
# its own, .venv in the checkout, made on first use (as root on Debian without the
# venv module, python3-venv is installed with apt first). The project is (re)installed
# into it only when pyproject.toml changed since the last install, so later calls
# start at once. Inside an already active virtual environment ($VIRTUAL_ENV), that
# one is used instead.
#
# SMPPHUB_EXTRAS=test installs the test extras too (tests/run.sh does this).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
note() { printf 'smpphub.sh: %s\n' "$*" >&2; }

if [ -n "${VIRTUAL_ENV:-}" ]; then
    VENV="$VIRTUAL_ENV"
else
    VENV="$ROOT/.venv"
    if [ ! -x "$VENV/bin/python" ]; then
        BASE=$(command -v python3 || command -v python || true)
        [ -n "$BASE" ] || { note "no python3 found: install Python 3.11 or newer"; exit 1; }
        "$BASE" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || { note "$("$BASE" --version 2>&1) is too old: smpphub needs Python 3.11 or newer"; exit 1; }
        note "creating $VENV"
        if ! "$BASE" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                note "installing the venv module (apt: python3-venv)"
                apt-get update -qq >/dev/null
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
                "$BASE" -m venv "$VENV"
            else
                note "cannot create a virtual environment: install python3-venv (Debian/Ubuntu) and run again"
                exit 1
            fi
        fi
    fi
fi

PY="$VENV/bin/python"
EXTRAS=${SMPPHUB_EXTRAS:-}
SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[$EXTRAS]"
# What the installed copy was made from: the project file and the extras asked for.
STAMP="$VENV/.smpphub-installed"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    note "installing smpphub${EXTRAS:+ with [$EXTRAS]} into $VENV"
    (cd "$ROOT" && PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --disable-pip-version-check -e "$SPEC")
    printf '%s' "$WANT" > "$STAMP"
fi

exec "$VENV/bin/smpphub" "$@"
