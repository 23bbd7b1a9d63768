#!/bin/bash
# Runs one libFuzzer target (built by tests/fuzz/build.sh) for SECONDS, under
# nice, starting from the committed seeds; new inputs go to a working
# corpus under OUT, crashes to OUT/artifacts/TARGET/.
#
#   tests/fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#   tests/fuzz/run.sh merge TARGET [libFuzzer options...]
#                                       minimise seeds + working corpus
#                                       into tests/fuzz/corpus/TARGET
#                                       (-use_counters=0: edges only, fewer
#                                       files)
#
# The last lines of OUT/TARGET.log hold libFuzzer's final stats
# (-print_final_stats=1): execs, exec/s, cov (edges), ft (features).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# (ASAN_OPTIONS=fast_unwind_on_malloc=0 gives full leak stacks through
# libcrypto, which has no frame pointers, at a hundredth of the speed)

# The attribute parser of ota must stay small: a few hundred bytes that
# make libplist build millions of nodes are a bug, caught well before 2 GB.
rss_limit() {
    case "$1" in
        ota) echo 512 ;;
        *) echo 2048 ;;
    esac
}

max_len() {
    case "$1" in
        pkiop_post|ota|cert|decode) echo 65536 ;;
        pkiop_get) echo 131072 ;;
        csr|challenge_query) echo 16384 ;;
        *) echo "run.sh: unknown target $1" >&2; exit 2 ;;
    esac
}

if [ "${1:-}" = merge ]; then
    t="${2:?usage: run.sh merge TARGET [libFuzzer options...]}"
    shift 2
    max_len "$t" >/dev/null
    seeds="$here/corpus/$t"
    work="$out/corpus-$t"
    merged="$out/merged-$t"
    rm -rf "$merged"
    mkdir -p "$merged" "$work"
    nice -n 10 "$out/fuzz_$t" -merge=1 -max_len="$(max_len "$t")" \
        -rss_limit_mb="$(rss_limit "$t")" -timeout=10 "$@" "$merged" \
        "$seeds" "$work" \
        2>&1 | tail -3
    rm -rf "$seeds"
    mv "$merged" "$seeds"
    echo "run.sh: $seeds: $(find "$seeds" -type f | wc -l) files," \
        "$(du -sk "$seeds" | cut -f1) KiB"
    exit 0
fi

t="${1:?usage: run.sh TARGET SECONDS [libFuzzer options...]}"
secs="${2:?usage: run.sh TARGET SECONDS [libFuzzer options...]}"
shift 2
bin="$out/fuzz_$t"
[ -x "$bin" ] || { echo "run.sh: $bin missing: run tests/fuzz/build.sh" >&2; exit 2; }
work="$out/corpus-$t"
art="$out/artifacts/$t"
mkdir -p "$work" "$art"
echo "run.sh: fuzz_$t for $secs s, log $out/$t.log"
set +e
nice -n 10 "$bin" -max_total_time="$secs" -max_len="$(max_len "$t")" \
    -rss_limit_mb="$(rss_limit "$t")" -timeout=10 -print_final_stats=1 \
    -dict="$here/dict/$t.dict" -artifact_prefix="$art/" "$@" \
    "$work" "$here/corpus/$t" >"$out/$t.log" 2>&1
rc=$?
set -e
grep -E '^#[0-9]+ +DONE|^stat::|ERROR|SUMMARY' "$out/$t.log" | tail -12
exit $rc
