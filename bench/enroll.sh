#!/bin/bash
# Enrollments/s through mod_scep_ota, side by side with micromdm's
# scepserver on the same kind of requests, in one run.
#
#   bench/enroll.sh [N]        N distinct PKCSReqs per server and level (200)
#   BENCH_STORE=memory bench/enroll.sh   the module without durable state
#
# For each server, N distinct PKCSReqs (RSA-2048, AES-128, SHA-256) are built
# in advance per concurrency level (1, 4, 16) with `scep-ota request`, then
# replayed once each with wrk (bench/replay.lua), alternating module and
# micromdm. Only SUCCESS CertReps count. micromdm's scepserver binds every
# interface, so it runs in a network namespace that has only loopback, and
# its wrk runs there too. The crypto bound is `openssl speed -multi 2
# rsa2048` signs/s divided by 3 (each enrollment costs three RSA private-key
# operations: decrypt the envelope, sign the certificate, sign the CertRep).
# Needs root (ip netns), wrk, scep, and a built module and CLI.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-200}"
levels="${BENCH_LEVELS:-1 4 16}"
port="${BENCH_PORT:-18280}"
mport=8380
ns="scepbench$$"
work="$(mktemp -d /tmp/scep-enroll-bench.XXXXXX)"
httpd="$(apxs -q SBINDIR)/$(apxs -q PROGNAME)"
mods="$(apxs -q LIBEXECDIR)"
cli="$work/scep-ota"   # a copy: a rebuild during the run cannot touch it
secret="bench-secret"
mpid=""

cleanup() {
    "$httpd" -f "$work/httpd.conf" -k stop 2>/dev/null || true
    [ -n "$mpid" ] && kill -INT "$mpid" 2>/dev/null || true
    sleep 1
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for tool in wrk scepserver ip openssl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing"; exit 1; }
done
[ -x "$top/tools/scep-ota" ] || { echo "bench: build first (make)"; exit 1; }
cp "$top/tools/scep-ota" "$cli"
cp "$top/mod_scep_ota/.libs/mod_scep_ota.so" "$work/mod_scep_ota.so"

# --- the module -----------------------------------------------------------
mkdir -p "$work/mod/logs" "$work/mod/state" "$work/reqs"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
    -keyout "$work/mod/ca.key" -out "$work/mod/ca.pem" -subj "/CN=Bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign" \
    2>/dev/null
user=""
if [ "$(id -u)" = 0 ]; then
    user="User www-data
Group www-data"
    chown www-data "$work/mod/logs" "$work/mod/state"
fi
chmod -R a+rX "$work"
cat > "$work/httpd.conf" <<CONF
ServerRoot "$work/mod"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile logs/httpd.pid
ErrorLog logs/error.log
LogLevel warn
$user
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule scep_ota_module $work/mod_scep_ota.so
StartServers 2
ThreadsPerChild 25
SCEPCACertificateFile ca.pem
SCEPCAKeyFile ca.key
SCEPChallengePassword $secret
SCEPStore ${BENCH_STORE:-sqlite3:state/scep_ota.db}
<Location /scep>
    SetHandler scep
</Location>
CONF
"$httpd" -f "$work/httpd.conf" -k start

# --- micromdm's scepserver, loopback only ----------------------------------
mkdir -p "$work/mm"
(cd "$work/mm" && scepserver ca -init -depot depot -keySize 2048 \
    -organization peers -country US >/dev/null 2>&1)
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
(cd "$work/mm" && exec ip netns exec "$ns" scepserver -depot depot \
    -port "$mport" -challenge "$secret" -allowrenew 0 \
    > "$work/mm/server.log" 2>&1) &
mpid=$!
sleep 1

# --- requests, built before anything is timed --------------------------------
build() {   # server recipient level
    local dir="$work/reqs/$1-$3" i
    mkdir -p "$dir"
    : > "$dir.list"
    for i in $(seq "$n"); do
        echo "$dir/$i"
    done | xargs -P "$(nproc)" -I{} sh -c '
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
            -out {}.key 2>/dev/null
        "$0" request --type pkcsreq --recipient "$1" --key {}.key \
            --subject "/CN=bench-$(basename $(dirname {}))-$(basename {})" \
            --challenge "$2" --cipher aes128 --digest sha256 -o {}.der \
            >/dev/null' "$cli" "$2" "$secret"
    ls "$dir"/*.der > "$dir.list"
}
echo "bench: building $n requests per server and level..."
for c in $levels; do
    build mod "$work/mod/ca.pem" "$c"
    build mm "$work/mm/depot/ca.pem" "$c"
done

run() {   # label level list url [netns]
    local t=$(( $2 < 2 ? 1 : 2 )) done="$work/done-$1-$2" pid out i
    local cmd=(wrk -t"$t" -c"$2" -d3600s --timeout 30s
               -s "$top/bench/replay.lua" "$4" -- "$3" "$t" $(( $2 / t )) "$done")
    mkdir -p "$done"
    if [ -n "${5:-}" ]; then cmd=(ip netns exec "$5" "${cmd[@]}"); fi
    "${cmd[@]}" > "$work/wrk.out" 2>&1 &
    pid=$!
    for i in $(seq 6000); do     # at most 10 minutes
        [ "$(ls "$done" | wc -l)" -ge "$t" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    pkill -INT -P "$pid" wrk 2>/dev/null || true
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" || true
    out=$(grep '^RESULT' "$work/wrk.out") || out="RESULT failed: $(tail -2 "$work/wrk.out")"
    printf '%-9s c=%-3s %s\n' "$1" "$2" "${out#RESULT }"
}

echo "bench: replaying (alternating module and micromdm)"
for c in $levels; do
    run module "$c" "$work/reqs/mod-$c.list" \
        "http://127.0.0.1:$port/scep?operation=PKIOperation"
    run micromdm "$c" "$work/reqs/mm-$c.list" \
        "http://127.0.0.1:$mport/scep?operation=PKIOperation" "$ns"
done

signs=$(openssl speed -multi 2 -seconds 3 rsa2048 2>/dev/null \
    | awk '/^rsa 2048 bits/ { print $(NF-1) }' | tail -1)
echo "crypto bound: $signs RSA-2048 signs/s on 2 processes / 3 = $(awk -v s="$signs" 'BEGIN { printf "%.0f", s / 3 }') enrollments/s"
errs=$(grep -c -E '\[(error|crit|alert|emerg)\]|:error\]' "$work/mod/logs/error.log" || true)
echo "module error-log lines at error or above: $errs"
