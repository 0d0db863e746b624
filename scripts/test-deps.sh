#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, python3 and node:
# - PyJWT and cryptography, for the interoperability test that verifies keys in Python;
# - a real GeoIP country database (from the npm registry), for the country-restriction tests.
# Idempotent: it only installs what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if python3 -c 'import jwt, cryptography' 2>/dev/null; then
    echo "test-deps: PyJWT and cryptography already installed"
else
    echo "test-deps: installing PyJWT and cryptography"
    python3 -m pip install --quiet --disable-pip-version-check 'pyjwt[crypto]>=2.8' \
        || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages 'pyjwt[crypto]>=2.8'
fi

scripts/fetch-geoip.sh
