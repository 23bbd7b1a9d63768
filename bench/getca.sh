#!/bin/bash
# GetCACaps and GetCACert requests/s through mod_scep_ota, side by side with
# the same bytes served as static files by the same httpd, and with httpd's
# own in-memory answer (a mod_rewrite `RewriteRule ^ - [R=204]`: no file, no
# body, the cheapest request this httpd can serve), in one run.
#
#   bench/getca.sh [seconds-per-run] [rounds]
#
# Needs wrk (apt-get install wrk) and a built module. Runs are alternated
# (module, static, 204, module, static, 204...) so machine noise hits all
# alike; the ratios module/static and module/204 are what to compare, not
# the absolute numbers.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-5}"
rounds="${2:-3}"
port="${BENCH_PORT:-18180}"
conns="${BENCH_CONNS:-16}"
work="$(mktemp -d /tmp/scep-bench.XXXXXX)"
httpd="$(apxs -q SBINDIR)/$(apxs -q PROGNAME)"
mods="$(apxs -q LIBEXECDIR)"
trap '"$httpd" -f "$work/httpd.conf" -k stop 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT

command -v wrk >/dev/null || { echo "bench: wrk is not installed"; exit 1; }
mkdir -p "$work/htdocs" "$work/logs"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
    -keyout "$work/ca.key" -out "$work/ca.pem" -subj "/CN=Bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign" \
    2>/dev/null
chmod -R a+rX "$work"
user=""; [ "$(id -u)" = 0 ] && user="User www-data
Group www-data" && chown www-data "$work/logs"

cat > "$work/httpd.conf" <<CONF
ServerRoot "$work"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile logs/httpd.pid
ErrorLog logs/error.log
LogLevel warn
$user
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule rewrite_module $mods/mod_rewrite.so
LoadModule scep_ota_module $top/mod_scep_ota/.libs/mod_scep_ota.so
DocumentRoot htdocs
ThreadsPerChild 25
StartServers 2
SCEPCACertificateFile ca.pem
SCEPCAKeyFile ca.key
<Location /scep>
    SetHandler scep
</Location>
<Location /nop>
    RewriteEngine On
    RewriteRule ^ - [R=204]
</Location>
CONF
"$httpd" -f "$work/httpd.conf" -k start
for i in $(seq 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/scep?operation=GetCACaps" && break
    sleep 0.1
done
base="http://127.0.0.1:$port"
curl -sf -o "$work/htdocs/caps.txt" "$base/scep?operation=GetCACaps"
curl -sf -o "$work/htdocs/ca.der" "$base/scep?operation=GetCACert"
chmod a+r "$work/htdocs"/*
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/nop")
[ "$code" = 204 ] || { echo "bench: /nop answered $code, not 204"; exit 1; }

rate() {
    wrk -t2 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ { print $2 }'
}

: > "$work/rates"
for r in $(seq "$rounds"); do
    echo "caps $(rate "$base/scep?operation=GetCACaps")" >> "$work/rates"
    echo "caps_static $(rate "$base/caps.txt")" >> "$work/rates"
    echo "nop $(rate "$base/nop")" >> "$work/rates"
    echo "cert $(rate "$base/scep?operation=GetCACert")" >> "$work/rates"
    echo "cert_static $(rate "$base/ca.der")" >> "$work/rates"
done

awk '{ s[$1] += $2; n[$1]++ }
END {
    nop = s["nop"] / n["nop"]
    printf "%-10s %14s %14s %9s %12s\n", "operation", "module req/s", "static req/s", \
        "/static", "/httpd 204"
    printf "%-10s %14.0f %14.0f %9.2f %12.2f\n", "GetCACaps", s["caps"]/n["caps"], \
        s["caps_static"]/n["caps_static"], s["caps"]/s["caps_static"], \
        s["caps"]/n["caps"]/nop
    printf "%-10s %14.0f %14.0f %9.2f %12.2f\n", "GetCACert", s["cert"]/n["cert"], \
        s["cert_static"]/n["cert_static"], s["cert"]/s["cert_static"], \
        s["cert"]/n["cert"]/nop
    printf "httpd 204 (mod_rewrite, in memory): %.0f req/s\n", nop
}' "$work/rates"
echo "(wrk -t2 -c$conns, ${secs}s x $rounds rounds alternated, event MPM, $(nproc) cores)"
