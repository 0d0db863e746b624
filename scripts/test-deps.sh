#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, python3 and node:
# - PyJWT and cryptography, for the interoperability test that verifies keys in Python;
# - jsonschema, to check that editors validating with `keysmith schema` accept the shipped config;
# - a real GeoIP country database (from the npm registry), for the country-restriction tests.
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

scripts/fetch-geoip.sh
