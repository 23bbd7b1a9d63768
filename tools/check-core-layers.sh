#!/bin/sh
# The OTA core says what it decided as a scep_outcome_t and leaves HTTP to
# the glue (mod_scep_ota_http.c); libplist is called from ota_plist.c only.
# Fail when either slips.
top="${top_srcdir:-.}"
core="$top/mod_scep_ota/ota_*.c $top/mod_scep_ota/ota_private.h
      $top/include/scep_ota/ota_*.h $top/include/scep_ota/scep_outcome.h"
status='HTTP_[A-Z]|http_status|(^|[^0-9])(200|400|401|403|404|405|413|500|503)([^0-9]|$)'
# shellcheck disable=SC2086
http=$(grep -nE "$status" $core)
if [ -n "$http" ]; then
    echo "HTTP statuses in the OTA core (give a scep_outcome_kind_t):"
    echo "$http"; exit 1
fi
plist=$(grep -nE '(^|[^_a-zA-Z])plist_[a-z_]+\(' "$top"/mod_scep_ota/*.c \
        | grep -v '/ota_plist\.c:')
if [ -n "$plist" ]; then
    echo "libplist called outside ota_plist.c (add an ota_plist_* helper):"
    echo "$plist"; exit 1
fi
echo "OTA core: no HTTP statuses; libplist only in ota_plist.c"
