#!/bin/bash
# GetCACaps and GetCACert requests/s through mod_scep_ota, side by side with
# the same bytes served as static files by the same httpd, in one run.
#
#   bench/getca.sh [seconds-per-run] [rounds]
#
# Needs wrk (apt-get install wrk) and a built module. Runs are alternated
# (module, static, module, static...) so machine noise hits both alike; the
# ratio module/static is what to compare, not the absolute numbers.
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
LoadModule scep_ota_module $top/mod_scep_ota/.libs/mod_scep_ota.so
DocumentRoot htdocs
ThreadsPerChild 25
StartServers 2
SCEPCACertificateFile ca.pem
SCEPCAKeyFile ca.key
<Location /scep>
    SetHandler scep
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

rate() {
    wrk -t2 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ { print $2 }'
}

: > "$work/rates"
for r in $(seq "$rounds"); do
    echo "caps $(rate "$base/scep?operation=GetCACaps")" >> "$work/rates"
    echo "caps_static $(rate "$base/caps.txt")" >> "$work/rates"
    echo "cert $(rate "$base/scep?operation=GetCACert")" >> "$work/rates"
    echo "cert_static $(rate "$base/ca.der")" >> "$work/rates"
done

awk '{ s[$1] += $2; n[$1]++ }
END {
    printf "%-10s %14s %14s %7s\n", "operation", "module req/s", "static req/s", "ratio"
    printf "%-10s %14.0f %14.0f %7.2f\n", "GetCACaps", s["caps"]/n["caps"], \
        s["caps_static"]/n["caps_static"], s["caps"]/s["caps_static"]
    printf "%-10s %14.0f %14.0f %7.2f\n", "GetCACert", s["cert"]/n["cert"], \
        s["cert_static"]/n["cert_static"], s["cert"]/s["cert_static"]
}' "$work/rates"
echo "(wrk -t2 -c$conns, ${secs}s x $rounds rounds alternated, event MPM, $(nproc) cores)"
