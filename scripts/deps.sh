#!/usr/bin/env bash
# Installs the Debian 12 packages driftwatch needs to build, test and run the quick start.
# Idempotent: quiet and fast when everything is already present.
#   scripts/deps.sh               everything: build, tests, quick start, manifests
#   scripts/deps.sh --build-only  only what compiling driftwatch needs (the Dockerfile's build stage)
#   scripts/deps.sh --bench       everything, and what bench/ needs besides (the Python peer's
#                                 clients, redis-py for bench/redis_memory.py, bc)
set -euo pipefail

BUILD_PKGS=(
    build-essential cmake pkg-config
    librdkafka-dev libjansson-dev libhiredis-dev libcurl4-openssl-dev libcmocka-dev
    libmicrohttpd-dev libyaml-dev libssl-dev zlib1g-dev libcsv-dev
)
# chromium: headless, renders the status page in tests/integration/test_status_page.py.
# libmimalloc2.0, libtcmalloc-minimal4: preloaded by tests/integration/test_allocator.py.
TEST_PKGS=(
    clang-format clang libclang-rt-14-dev
    redis-server kcat prometheus prometheus-alertmanager python3 python3-yaml curl ca-certificates procps
    redis-sentinel redis-tools stunnel4 openssl
    chromium libmimalloc2.0 libtcmalloc-minimal4
)

case "${1:-}" in
    --build-only) PKGS=("${BUILD_PKGS[@]}") ;;
    "" | --bench) PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
        [ "${1:-}" = --bench ] && PKGS+=(python3-redis python3-confluent-kafka bc)
        # kubectl renders deploy/kustomize (`kubectl kustomize`, tests/integration/test_kustomize.py).
        # Debian's is in kubernetes-client; a kubectl already installed from another package
        # (the upstream `kubectl` package owns /usr/bin/kubectl too, and dpkg refuses two owners)
        # is used as it is.
        command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client) ;;
    *) echo "usage: scripts/deps.sh [--build-only|--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The redis-server package starts a system instance on 6379; tests start their own on free ports.
