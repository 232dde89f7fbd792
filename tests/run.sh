#!/usr/bin/env bash
# THE test command (README: `bash tests/run.sh`). Installs the project with its test
# extras into the checkout's virtual environment (.venv, made by smpphub.sh; or the
# active one), the interop oracles it needs (smpplib & co. from PyPI, tshark from apt
# when we are root, node-smpp from npm), then runs pytest with any arguments passed
# through. Exits with pytest's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

note() { printf 'run.sh: %s\n' "$*" >&2; }

# The same environment as `bash smpphub.sh`, with the test extras; installs only
# when pyproject.toml changed since the last run.
SMPPHUB_EXTRAS=test bash smpphub.sh --version >&2
PYTHON="${VIRTUAL_ENV:-$PWD/.venv}/bin/python"

# Programs the tests need, from Debian's packages: "command package what needs it".
# What is missing is installed with one apt-get call when we are root; otherwise each
# one is named (its tests skip here and fail under CI).
NEEDED=(
    "tshark tshark Wireshark's SMPP dissector reads our captures (tests/test_tshark.py and others)"
    "systemd-analyze systemd checks the README's systemd unit (tests/test_readme_examples.py)"
    "curl curl runs the README's curl lines as printed (tests/test_readme_ops.py, test_readme_http.py)"
    "wrk wrk drives the HTTP benchmark's single-message variants (tests/test_bench_http.py)"
    "chromium chromium the browser tests, driven by Playwright (tests/browserkit.py; Playwright cannot download its own)"
)
MISSING=()
WHY=()
for entry in "${NEEDED[@]}"; do
    read -r command package why <<<"$entry"
    command -v "$command" >/dev/null 2>&1 || MISSING+=("$package") WHY+=("$package: $why")
done
if [ "${#MISSING[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing ${MISSING[*]} (apt)"
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
    else
        for line in "${WHY[@]}"; do note "missing and cannot be installed here (not root / no apt): $line"; done
    fi
fi

NODE_DIR=tests/interop/node
if [ ! -d "$NODE_DIR/node_modules" ]; then
    if command -v npm >/dev/null 2>&1; then
        note "installing node-smpp (npm)"
        if [ -f "$NODE_DIR/package-lock.json" ]; then
            (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        else
            (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
        fi
    else
        note "npm is missing: node-smpp tests will skip (fail under CI)"
    fi
fi

exec "$PYTHON" -m pytest -q "$@"
