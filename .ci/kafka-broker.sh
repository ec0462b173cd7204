#!/usr/bin/env bash
# Installs the Kafka-protocol broker real-mode tests run against: noida-db from PyPI into
# .ci/venv (about 1 s). Idempotent and quiet; fails loudly.
#
#   .ci/kafka-broker.sh install   create .ci/venv with noida-db==0.2.3 if it is absent
#   .ci/kafka-broker.sh path      print the noida-db binary the tests will use
#
# The tests start and stop the broker themselves (see kafka/src/broker.rs); they find the
# binary inside the wheel, not the venv's bin/noida-db wrapper, because killing the wrapper
# leaves the broker running.
set -euo pipefail

NOIDA_VERSION="0.2.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.ci/venv"

noida_bin() {
    local bin
    for bin in "$VENV"/lib/python3*/site-packages/noida_db/noida-db; do
        if [[ -x "$bin" ]]; then
            echo "$bin"
            return 0
        fi
    done
    return 1
}

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("noida-db"))' 2>/dev/null
}

install() {
    if noida_bin >/dev/null && [[ "$(installed_version || true)" == "$NOIDA_VERSION" ]]; then
        return 0
    fi
    command -v python3 >/dev/null || { echo "kafka-broker.sh: python3 is required" >&2; exit 1; }
    if [[ ! -x "$VENV/bin/pip" ]]; then
        python3 -m venv "$VENV" || {
            echo "kafka-broker.sh: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
            exit 1
        }
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "noida-db==$NOIDA_VERSION" || {
        echo "kafka-broker.sh: pip install noida-db==$NOIDA_VERSION failed" >&2
        exit 1
    }
    noida_bin >/dev/null || {
        echo "kafka-broker.sh: noida-db installed but its binary was not found under $VENV/lib" >&2
        exit 1
    }
}

case "${1:-}" in
    install) install ;;
    path) noida_bin || { echo "kafka-broker.sh: noida-db not installed" >&2; exit 1; } ;;
    *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
