#!/bin/bash
# Enrollments/s through mod_scep_ota, side by side with micromdm's
# scepserver on the same kind of requests and with the RSA bound, in one run.
#
#   bench/enroll.sh [N]        N distinct PKCSReqs per server and level (200)
#   BENCH_STORES="sqlite memory" bench/enroll.sh   several stores, one run
#   BENCH_LEVELS="1 2 4 16"    the concurrency levels (connections)
#   BENCH_KEYS=DIR             where the requesters' RSA keys are kept for
#                              the next run (/var/tmp/scep-bench-keys-UID)
#
# A store is "sqlite" (the default store: no SCEPStore line), "memory",
# "dbd" (PostgreSQL through mod_dbd: `DBDriver pgsql` + `SCEPStore dbd`, on
# a private cluster that tests/integration/pg.sh starts on loopback for the
# run, fsync on), or any SCEPStore argument ("pgsql:host=... dbname=...").
# BENCH_STORE (one store) is still read when BENCH_STORES is not set.
#
# For each level, N distinct PKCSReqs (RSA-2048, AES-128, SHA-256) are built
# in advance with `scep-ota request`, then replayed once each with wrk
# (bench/replay.lua, one connection per wrk thread), against each store's
# httpd and micromdm in turn. Only SUCCESS CertReps count; p50/p99 are
# those of the enrollments alone. micromdm's scepserver binds every
# interface, so it runs in a network namespace that has only loopback, and
# its wrk runs there too. The crypto bound is `openssl speed -multi 2
# rsa2048` signs/s divided by 3 (each enrollment costs three RSA private-key
# operations: decrypt the envelope, sign the certificate, sign the CertRep),
# measured before and after the replays; the mean counts.
# Needs root (ip netns), wrk, scep, and a built module and CLI.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-200}"
levels="${BENCH_LEVELS:-1 2 4 16}"
stores="${BENCH_STORES:-${BENCH_STORE:-sqlite}}"
port="${BENCH_PORT:-18280}"
mport=8380
ns="scepbench$$"
work="$(mktemp -d /tmp/scep-enroll-bench.XXXXXX)"
httpd="$(apxs -q SBINDIR)/$(apxs -q PROGNAME)"
mods="$(apxs -q LIBEXECDIR)"
cli="$work/scep-ota"   # a copy: a rebuild during the run cannot touch it
secret="bench-secret"
mpid=""
nstores=0
pgdir=""
keys="${BENCH_KEYS:-/var/tmp/scep-bench-keys-$(id -u)}"
mkdir -p -m 700 "$keys"

cleanup() {
    local i
    for i in $(seq "$nstores"); do
        "$httpd" -f "$work/mod$i/httpd.conf" -k stop 2>/dev/null || true
    done
    [ -n "$mpid" ] && kill -INT "$mpid" 2>/dev/null || true
    [ -n "$pgdir" ] && "$top/tests/integration/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true
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

# --- the module: one httpd per store, one CA for all -----------------------
mkdir -p "$work/reqs"
chmod 755 "$work"      # the worker user reads the module's files below
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
    -keyout "$work/ca.key" -out "$work/ca.pem" -subj "/CN=Bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign" \
    2>/dev/null

label_of() {   # store -> a short name
    case "$1" in
        sqlite|memory|dbd) echo "$1" ;;
        sqlite3:*) echo sqlite-uri ;;
        pgsql:*) echo pgsql ;;
        *) echo other ;;
    esac
}

start_module() {   # index store
    local dir="$work/mod$1" user="" storeline="" i
    mkdir -p "$dir/logs" "$dir/state"
    cp "$work/ca.pem" "$work/ca.key" "$dir/"
    if [ "$(id -u)" = 0 ]; then
        user="User www-data
Group www-data"
        chown www-data "$dir/logs" "$dir/state"
    fi
    case "$2" in
        sqlite) ;;
        dbd)
            if [ -z "$pgdir" ]; then   # one private cluster for the run
                pgdir="$work/pg"
                "$top/tests/integration/pg.sh" start "$pgdir" > /dev/null
            fi
            storeline="LoadModule dbd_module $mods/mod_dbd.so
DBDriver pgsql
DBDParams \"$(cat "$pgdir/params")\"
# a connection for each thread, opened when the child starts: no
# PostgreSQL backend is forked while the clock runs
DBDMin 25
DBDKeep 25
DBDMax 25
SCEPStore dbd" ;;
        *) storeline="SCEPStore $2" ;;
    esac
    chmod -R a+rX "$dir"
    cat > "$dir/httpd.conf" <<CONF
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$(( port + $1 ))
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
$storeline
<Location /scep>
    SetHandler scep
</Location>
CONF
    "$httpd" -f "$dir/httpd.conf" -k start
    for i in $(seq 50); do
        curl -sf -o /dev/null \
            "http://127.0.0.1:$(( port + $1 ))/scep?operation=GetCACaps" \
            && return 0
        sleep 0.1
    done
    echo "bench: the httpd for store $2 does not answer:"
    tail -5 "$dir/logs/error.log"
    exit 1
}

for s in $stores; do
    nstores=$(( nstores + 1 ))
    start_module "$nstores" "$s"
done

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
# Each store is fresh, so the module's requests of a level serve every
# store; micromdm gets its own (encrypted to its CA).
# A requester key serves the same index and level of every server and run
# (each request is a transaction of its own, to a fresh store).
build() {   # server recipient level
    local dir="$work/reqs/$1-$3" i
    mkdir -p "$dir"
    for i in $(seq "$n"); do
        echo "$dir/$i $keys/$3-$i.key"
    done | xargs -P "$(nproc)" -L1 sh -c '
        [ -s "$5" ] || { openssl genpkey -algorithm RSA \
            -pkeyopt rsa_keygen_bits:2048 -out "$5.tmp" 2>/dev/null \
            && mv "$5.tmp" "$5"; }
        "$0" request --type pkcsreq --recipient "$1" --key "$5" \
            --subject "/CN=bench-$(basename $(dirname $4))-$(basename $4)" \
            --challenge "$2" --cipher aes128 --digest sha256 -o "$4.der" \
            >/dev/null' "$cli" "$2" "$secret" x
    ls "$dir"/*.der > "$dir.list"
}
echo "bench: building $n requests per server and level..."
for c in $levels; do
    build mod "$work/ca.pem" "$c"
    build mm "$work/mm/depot/ca.pem" "$c"
done

bound() {
    openssl speed -multi 2 -seconds 3 rsa2048 2>/dev/null \
        | awk '/^rsa 2048 bits/ { print $(NF-1) }' | tail -1
}

# results: one line per server and level, "label level rate p50 p99 fail"
: > "$work/results"
exec {tick}<> <(:)   # never readable: "read -t" on it is a sleep in bash
run() {   # label level list url [netns]
    local done="$work/done-$1-$2" pid out i marks
    local cmd=(wrk -t"$2" -c"$2" -d3600s --timeout 30s
               -s "$top/bench/replay.lua" "$4" -- "$3" "$2" "$done")
    mkdir -p "$done"
    if [ -n "${5:-}" ]; then cmd=(ip netns exec "$5" "${cmd[@]}"); fi
    "${cmd[@]}" > "$work/wrk.out" 2>&1 &
    pid=$!
    # Wait for every thread's marker without starting a process: a loop of
    # ls, wc and sleep took about a tenth of the two cores from the server
    # it measured. Globs, kill -0 and read -t are bash builtins.
    for i in $(seq 6000); do     # at most 10 minutes
        marks=("$done"/*)
        [ -e "${marks[0]}" ] && [ "${#marks[@]}" -ge "$2" ] && break
        kill -0 "$pid" 2>/dev/null || break
        read -r -t 0.1 -u "$tick" || true
    done
    pkill -INT -P "$pid" wrk 2>/dev/null || true
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" || true
    out=$(grep '^RESULT' "$work/wrk.out") || out="RESULT failed: $(tail -2 "$work/wrk.out")"
    printf '%-10s c=%-3s %s\n' "$1" "$2" "${out#RESULT }"
    echo "$1 $2 ${out#RESULT }" | awk '{
        for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s %s %s %s %s %d\n", $1, $2, v["rate"] + 0, v["p50_ms"] + 0,
               v["p99_ms"] + 0, v["answered"] - v["success"] }' \
        >> "$work/results"
}

echo "bench: load before: $(uptime)"
sign0=$(bound)
echo "bench: replaying (each store's httpd, then micromdm, per level)"
for c in $levels; do
    i=0
    for s in $stores; do
        i=$(( i + 1 ))
        run "$(label_of "$s")" "$c" "$work/reqs/mod-$c.list" \
            "http://127.0.0.1:$(( port + i ))/scep?operation=PKIOperation"
    done
    run micromdm "$c" "$work/reqs/mm-$c.list" \
        "http://127.0.0.1:$mport/scep?operation=PKIOperation" "$ns"
done
sign1=$(bound)
echo "bench: load after: $(uptime)"

awk -v s0="$sign0" -v s1="$sign1" -v levels="$levels" '
{ rate[$1, $2] = $3; p50[$1, $2] = $4; p99[$1, $2] = $5; fail[$1] += $6
  if (!($1 in best) || $3 > best[$1]) { best[$1] = $3; at[$1] = $2 }
  if (!seen[$1]++) order[++k] = $1 }
END {
    b = (s0 + s1) / 6
    printf "crypto bound: RSA-2048 signs/s on 2 processes %.0f before, %.0f after; / 3 = %.0f enrollments/s\n", s0, s1, b
    nl = split(levels, lv, " ")
    printf "\n%-10s", "server"
    for (j = 1; j <= nl; j++) printf " %16s", "c=" lv[j] " /s p50/99ms"
    printf " %7s %6s %6s %7s %7s %5s\n", "best/s", "/mmdm", "/bound", "cN/c1", "p99/50", "fail"
    for (i = 1; i <= k; i++) {
        x = order[i]
        printf "%-10s", x
        for (j = 1; j <= nl; j++)
            printf " %16s", sprintf("%.0f %.1f/%.1f", rate[x, lv[j]], p50[x, lv[j]], p99[x, lv[j]])
        last = lv[nl]
        printf " %7.0f %6.2f %6.2f %7.2f %7.2f %5d\n", best[x],
               best["micromdm"] ? best[x] / best["micromdm"] : 0,
               b ? best[x] / b : 0,
               rate[x, lv[1]] ? rate[x, last] / rate[x, lv[1]] : 0,
               p50[x, last] ? p99[x, last] / p50[x, last] : 0, fail[x]
    }
    printf "(best/s at: "
    for (i = 1; i <= k; i++) printf "%s c=%s%s", order[i], at[order[i]], i < k ? ", " : ")\n"
}' "$work/results"

for i in $(seq "$nstores"); do
    errs=$(grep -c -E '\[(error|crit|alert|emerg)\]|:error\]' "$work/mod$i/logs/error.log" || true)
    echo "module $(label_of "$(echo $stores | cut -d' ' -f$i)"): error-log lines at error or above: $errs"
done
