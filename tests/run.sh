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

if ! command -v tshark >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing tshark (apt)"
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tshark >/dev/null
    else
        note "tshark is missing and cannot be installed here (not root / no apt): tshark tests will skip (fail under CI)"
    fi
fi

# systemd-analyze checks the README's systemd unit (tests/test_readme_examples.py)
if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing systemd-analyze (apt: systemd)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
    else
        note "systemd-analyze is missing and cannot be installed here: the unit-file test will fail under CI"
    fi
fi

# curl runs README.md's "Operating the hub" lines as printed (tests/test_readme_ops.py)
if ! command -v curl >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing curl (apt)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null
    else
        note "curl is missing and cannot be installed here: the README's operating examples will fail"
    fi
fi

# wrk drives the HTTP benchmark's single-message variants (tests/test_bench_http.py smoke-runs them)
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing wrk (apt)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
    else
        note "wrk is missing and cannot be installed here: the HTTP benchmark's wrk variants will skip"
    fi
fi

# Debian's Chromium for the browser tests (Playwright drives it: tests/browserkit.py);
# Playwright's own browser download cannot work without the network.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing chromium (apt)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        note "chromium is missing and cannot be installed here: browser tests will skip (fail under CI)"
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
