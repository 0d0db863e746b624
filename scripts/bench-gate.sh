#!/usr/bin/env bash
# Requests per second through nginx -> keysmith gate -> backend beside nginx -> backend, with wrk
# on loopback (the target: the gated rate is at least 70 % of the direct one). Needs a release
# build, Debian's nginx (also the backend: a second server block answering 201, so only the
# gate's cost differs between the two paths) and wrk
# (scripts/test-deps.sh installs both). Prints both rates and their ratio.
#
#   cargo build --release --locked --bin keysmith && scripts/bench-gate.sh [DURATION_S] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-10}"
connections="${2:-32}"
bin=target/release/keysmith
for tool in nginx wrk; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || { echo "missing $tool: run scripts/test-deps.sh" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "build first: cargo build --release --locked --bin keysmith" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# An issuer with one upload template, a key minted offline, and its JWKS as a file.
cat > "$work/config.toml" <<'TOML'
version = 1
issuer = "https://keys.bench"
[projects.demo]
[[templates]]
id = "up"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
TOML
"$bin" keygen --keys "$work/keys" >/dev/null
"$bin" serve --config "$work/config.toml" --keys "$work/keys" --listen 127.0.0.1:18080 --watch-ms 0 2>/dev/null &
pids+=($!)
sleep 1
curl -fsS http://127.0.0.1:18080/.well-known/jwks.json > "$work/jwks.json"
kill "${pids[0]}"
token=$("$bin" mint --config "$work/config.toml" --keys "$work/keys" --project demo --template up)

cat > "$work/gate.toml" <<TOML
issuer = "https://keys.bench"
audience = "demo"
jwks = "$work/jwks.json"
listen = "127.0.0.1:19090"
trusted_proxies = ["127.0.0.1/32"]
[[routes]]
methods = ["PUT", "POST", "GET"]
path = "/files/{*file}"
permission = "FILE_UPLOAD"
dir = "parent:file"
TOML
KEYSMITH_LOG=warn "$bin" gate --config "$work/gate.toml" &
pids+=($!)

mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream gate { server 127.0.0.1:19090; keepalive 64; }
    # The backend: its own server, so both paths make the same proxy hop to it. (A bare
    # return in the gated location would run before auth_request, in the rewrite phase.)
    upstream backend { server 127.0.0.1:18082; keepalive 64; }
    server {
        listen 127.0.0.1:18082;
        location / { return 201; }
    }
    server {
        listen 127.0.0.1:18081;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /direct/ { proxy_pass http://backend; }
        location /files/ {
            auth_request /_keysmith;
            proxy_pass http://backend;
        }
        location = /_keysmith {
            internal;
            proxy_pass http://gate/v1/authorize;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
NGINX
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
sleep 1

# Both paths must answer 201 for the comparison to mean anything.
for path in direct files; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:18081/$path/uploads/a.txt")
    [[ $code == 201 ]] || { echo "/$path answered $code, not 201" >&2; exit 1; }
done
rate() { wrk -t2 -c"$connections" -d"${duration}s" -H "Authorization: Bearer $token" "$1" | tee -a "$work/wrk.log" | awk '/Requests\/sec/ {print $2}'; }
direct=$(rate http://127.0.0.1:18081/direct/uploads/a.txt)
gated=$(rate http://127.0.0.1:18081/files/uploads/a.txt)
echo "direct (nginx -> backend):        $direct req/s"
echo "gated  (nginx -> gate -> backend): $gated req/s"
grep -i "non-2xx" "$work/wrk.log" >&2 || true
awk -v d="$direct" -v g="$gated" 'BEGIN { printf "ratio: %.0f %% of the direct rate (target >= 70 %%)\n", 100 * g / d }'
