#!/bin/bash
# Builds the libFuzzer targets with Debian's clang, ASan and UBSan, compiling
# the core library's sources directly (no libtool), plus gen_seeds (the
# seed generator, without sanitizers).
#
#   tests/fuzz/build.sh [TARGET...]     default: every target
#
# Env: OUT (default tests/fuzz/out), BUILD (the configured build tree with
# config.h, default the source tree), CC (default clang), JOBS.
# Needs: clang, libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev).
set -euo pipefail

top="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD:-$top}"
out="${OUT:-$top/tests/fuzz/out}"
cc="${CC:-clang}"
jobs="${JOBS:-2}"
targets=(pkiop_post pkiop_get csr ota cert decode challenge_query ocsp)
[ $# -gt 0 ] && targets=("$@")

if [ ! -f "$build/config.h" ] || [ ! -f "$build/include/scep_ota/scep_version.h" ]; then
    echo "build.sh: run ./configure first ($build/config.h is missing)" >&2
    exit 2
fi
command -v "$cc" >/dev/null || {
    echo "build.sh: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
}

pc=(apr-1 apr-util-1 libcrypto)
if pkg-config --exists libplist-2.0; then pc+=(libplist-2.0); else pc+=(libplist); fi
read -ra pkg_cflags <<<"$(pkg-config --cflags "${pc[@]}")"
read -ra libs <<<"$(pkg-config --libs "${pc[@]}")"
cflags=(-g -O1 -Wall -Wextra -Wno-unused-parameter
    -Werror=implicit-function-declaration -DHAVE_CONFIG_H -I"$build"
    -I"$build/include" -I"$top/include" -I"$top/mod_scep_ota" -I"$top/tools"
    "-DFUZZ_TOP_SRCDIR=\"$top\"" "${pkg_cflags[@]}")
san=("-fsanitize=address,undefined" -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)

# the sources of libscepota.la, as Makefile.am lists them
mapfile -t core < <(sed -n '/^mod_scep_ota_libscepota_la_SOURCES/,/^[^\t ]/p' \
    "$top/Makefile.am" | grep -o 'mod_scep_ota/[a-z_]*\.c')
core+=(tests/fuzz/fuzz_common.c tools/scep-ota-client.c)

mkdir -p "$out/obj-fuzz" "$out/obj-plain"
# compile DIR SOURCE... (extra flags in the array "extra"): JOBS at a
# time; fails if any compilation fails
compile() {
    local dir="$1" src pids=() rc=0 pid
    shift
    for src in "$@"; do
        "$cc" "${cflags[@]}" "${extra[@]}" -c "$top/$src" \
            -o "$dir/$(basename "$src" .c).o" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$jobs" ]; then
            wait "${pids[0]}" || rc=1
            pids=("${pids[@]:1}")
        fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    return $rc
}

echo "build.sh: core library (${#core[@]} files) with $cc"
extra=("${san[@]}" -fsanitize=fuzzer-no-link)
compile "$out/obj-fuzz" "${core[@]}"
extra=()
compile "$out/obj-plain" "${core[@]}"

objs_fuzz=() objs_plain=()
for src in "${core[@]}"; do
    objs_fuzz+=("$out/obj-fuzz/$(basename "$src" .c).o")
    objs_plain+=("$out/obj-plain/$(basename "$src" .c).o")
done

for t in "${targets[@]}"; do
    echo "build.sh: fuzz_$t"
    "$cc" "${cflags[@]}" "${san[@]}" -fsanitize=fuzzer \
        "$top/tests/fuzz/fuzz_$t.c" "${objs_fuzz[@]}" "${libs[@]}" \
        -o "$out/fuzz_$t"
done
"$cc" "${cflags[@]}" "$top/tests/fuzz/gen_seeds.c" "${objs_plain[@]}" \
    "${libs[@]}" -o "$out/gen_seeds"
echo "build.sh: done: $out/fuzz_{$(IFS=,; echo "${targets[*]}")} $out/gen_seeds"
