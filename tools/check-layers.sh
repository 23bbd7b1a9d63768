#!/bin/sh
# The core's parts and what each may include (README, "Layout"):
#   base   scep_crypt.c scep_log.c      -> base
#   store  store*.c                      -> base, store
#   SCEP   the other scep_*.c            -> base, store, SCEP
#   OTA    ota_*.c                       -> base, store, OTA, and of SCEP only
#          what a Phase 2 profile is made of: the CA, its capabilities, the
#          one-time challenges and their binding
# No core file includes an httpd header; the glue (mod_scep_ota*.c) may
# use every part.
top="${top_srcdir:-.}"
base="config.h scep_crypt.h scep_log.h scep_version.h"
store="$base scep_store.h scep_store_dbd.h"
scep="$store $(cd "$top/include/scep_ota" && ls scep_*.h | tr '\n' ' ')"
ota="$store ota_profile.h ota_plist.h ota_private.h scep_ca.h scep_caps.h \
scep_challenge.h scep_policy.h"
fail=0

allowed() {   # file list-of-headers
    grep -o '#include "[^"]*"' "$1" | sed 's/#include "//; s/"$//; s|^scep_ota/||' |
    while read -r h; do
        case " $2 " in
            *" $h "*) ;;
            *) echo "$(basename "$1") includes $h, outside its part"; ;;
        esac
    done
}

for f in "$top"/mod_scep_ota/*.c "$top"/mod_scep_ota/ota_private.h \
         "$top"/include/scep_ota/*.h; do
    name=$(basename "$f")
    case "$name" in
        mod_scep_ota*) continue ;;
        scep_crypt.[ch]|scep_log.[ch]|scep_version.h) rules="$base" ;;
        store*.c|scep_store*.h) rules="$store" ;;
        scep_*.[ch]) rules="$scep" ;;
        ota_*) rules="$ota" ;;
        *) echo "$name: a core file of no known part"; fail=1; continue ;;
    esac
    out=$(allowed "$f" "$rules")
    if [ -n "$out" ]; then
        echo "$out"; fail=1
    fi
    if grep -q '#include <\(httpd\|http_\|ap_\)' "$f"; then
        echo "$name includes an httpd header"; fail=1
    fi
done
[ $fail -eq 0 ] && echo "layers: every core file includes only what its part may use"
exit $fail
