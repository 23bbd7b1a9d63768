#!/bin/sh
# A throw-away PostgreSQL cluster for the tests, on a free loopback port.
#
#   pg.sh start [DIR]   initdb into DIR (default: a new temp dir), start the
#                       server, create database "scep"; prints the apr_dbd
#                       pgsql params string on stdout (one line) and keeps it
#                       in DIR/params. Without DIR the dir goes to stderr.
#   pg.sh stop DIR      stop the server (immediate) and remove DIR
#   pg.sh params DIR    print the params string again
#   pg.sh restart DIR [MODE [SECS]]
#                       restart the server (pg_ctl -m MODE: fast, the
#                       default, or immediate, a crash for the clients);
#                       with SECS it stays down that long in between
#
# Runs the server as the invoking user, or as "postgres" when invoked as
# root (initdb refuses root). Environment: PG_BINDIR (default: the newest
# /usr/lib/postgresql/*/bin), PG_FSYNC=off for speed where durability of the
# database itself does not matter (the default keeps fsync on).
set -eu

die() { echo "pg.sh: $*" >&2; exit 1; }

bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || d=$(dirname "$(command -v initdb 2>/dev/null || echo /x/x)")
    [ -x "$d/initdb" ] || die "no PostgreSQL server binaries (install postgresql or set PG_BINDIR)"
    echo "$d"
}

# runs a command as the cluster's owner
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c 'exec "$0" "$@"' -- "$@"
        fi
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    B=$(bindir)
    dir=${1:-}
    announce=0
    if [ -z "$dir" ]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/scep-pg.XXXXXX"); announce=1
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -e "$dir/data/PG_VERSION" ] && die "$dir holds a cluster already"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "no user 'postgres' to run the server as"
        chown postgres "$dir"
        chmod 700 "$dir"
    fi
    as_owner "$B/initdb" -D "$dir/data" -U scep -A trust -E UTF8 \
        --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fsync=${PG_FSYNC:-on}
    tries=0
    while :; do
        port=$(free_port)
        opts="-h 127.0.0.1 -p $port -k $dir -c fsync=$fsync -c max_connections=200 -c shared_buffers=32MB"
        if as_owner "$B/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "$opts" start >/dev/null 2>&1; then
            echo "$opts" >"$dir/opts"
            break
        fi
        tries=$((tries + 1))
        [ $tries -lt 3 ] || { tail -n 20 "$dir/server.log" >&2; die "server did not start"; }
    done
    as_owner "$B/createdb" -h 127.0.0.1 -p "$port" -U scep scep \
        || die "createdb failed"
    params="host=127.0.0.1 port=$port user=scep dbname=scep"
    echo "$params" >"$dir/params"
    echo "$port" >"$dir/port"
    [ $announce = 1 ] && echo "pg.sh: cluster in $dir" >&2
    echo "$params"
}

stop() {
    dir=${1:-}
    [ -n "$dir" ] || die "usage: pg.sh stop DIR"
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        B=$(bindir)
        as_owner "$B/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

restart() {
    dir=${1:-}
    mode=${2:-fast}
    secs=${3:-0}
    [ -n "$dir" ] && [ -f "$dir/opts" ] || die "usage: pg.sh restart DIR [fast|immediate [SECS]]"
    case "$mode" in fast|immediate) ;; *) die "restart: mode fast or immediate" ;; esac
    B=$(bindir)
    # pg_ctl's output goes to the log: the server must not inherit our
    # stdout, which the caller may be reading to its end
    as_owner "$B/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >>"$dir/server.log" 2>&1 \
        || die "stop failed"
    sleep "$secs"
    as_owner "$B/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(cat "$dir/opts")" start >/dev/null 2>&1 \
        || { tail -n 20 "$dir/server.log" >&2; die "server did not start again"; }
}

case "${1:-}" in
start)  shift; start "${1:-}" ;;
stop)   shift; stop "${1:-}" ;;
params) shift; cat "${1:?usage: pg.sh params DIR}/params" ;;
restart) shift; restart "$@" ;;
*)      echo "usage: pg.sh start [DIR] | stop DIR | params DIR | restart DIR [MODE [SECS]]" >&2; exit 2 ;;
esac
