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
base="config.h scep_crypt.h scep_log.h scep_outcome.h scep_version.h"
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
        scep_crypt.[ch]|scep_log.[ch]|scep_outcome.h|scep_version.h)
            rules="$base" ;;
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

# The core says what it decided (scep_outcome_t) and leaves HTTP to the
# glue (mod_scep_ota_http.c); libplist is called from ota_plist.c only.
status='HTTP_[A-Z]|http_status|(^|[^0-9])(200|400|401|403|404|405|413|500|503)([^0-9]|$)'
http=$(grep -nE "$status" "$top"/mod_scep_ota/scep_*.c "$top"/mod_scep_ota/ota_*.c \
       "$top"/mod_scep_ota/store*.c "$top"/mod_scep_ota/ota_private.h \
       "$top"/include/scep_ota/*.h | grep -v 'SCEPLOGNO(')
if [ -n "$http" ]; then
    echo "HTTP statuses in the core (give a scep_outcome_kind_t):"
    echo "$http"; fail=1
fi
plist=$(grep -nE '(^|[^_a-zA-Z])plist_[a-z_]+\(' "$top"/mod_scep_ota/*.c \
        | grep -v '/ota_plist\.c:')
if [ -n "$plist" ]; then
    echo "libplist called outside ota_plist.c (add an ota_plist_* helper):"
    echo "$plist"; fail=1
fi
[ $fail -eq 0 ] && echo "layers: each core file includes only what its part may use; no HTTP status below the glue; libplist only in ota_plist.c"
exit $fail
