#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, python3 and node:
# - PyJWT and cryptography, for the interoperability test that verifies keys in Python;
# - jsonschema, to check that editors validating with `keysmith schema` accept the shipped config;
# - a real GeoIP country database (from the npm registry), for the country-restriction tests;
# - Debian's chromium, for the test that a browser page on another origin gets a key (CORS);
# - Debian's redis-server, for the tests of the shared upload-limit store (`tests/limits.rs`).
# - kubernetes-validate (pip), to check deploy/kubernetes against the Kubernetes schemas;
# - Debian's podman, to build the Containerfile's image (tests/deploy.rs), and systemd's
#   systemd-analyze, to check deploy/systemd (small: most Debian systems have it already).
# Idempotent: it only installs what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if python3 -c 'import jwt, cryptography, jsonschema' 2>/dev/null; then
    echo "test-deps: PyJWT, cryptography and jsonschema already installed"
else
    echo "test-deps: installing PyJWT, cryptography and jsonschema"
    packages=('pyjwt[crypto]>=2.8' 'jsonschema>=4.18')
    python3 -m pip install --quiet --disable-pip-version-check "${packages[@]}" \
        || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "${packages[@]}"
fi

if command -v kubernetes-validate >/dev/null; then
    echo "test-deps: kubernetes-validate already installed"
else
    echo "test-deps: installing kubernetes-validate"
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
        || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages kubernetes-validate
fi

scripts/fetch-geoip.sh

# Debian packages: the command each provides, and the package.
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v podman >/dev/null || missing+=(podman)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v redis-server >/dev/null || missing+=(redis-server)
if [[ ${#missing[@]} == 0 ]]; then
    echo "test-deps: chromium, podman, systemd-analyze and redis-server already installed"
else
    echo "test-deps: installing Debian's ${missing[*]}"
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
