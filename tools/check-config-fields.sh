#!/bin/sh
# Every field of the per-server config struct must be handled by the merge
# function, so a virtual host never silently loses a setting.
top="${top_srcdir:-.}"
hdr="$top/mod_scep_ota/mod_scep_ota_config.h"
src="$top/mod_scep_ota/mod_scep_ota_config.c"
fields=$(sed -n '/^typedef struct scep_srv_conf_t {/,/^} scep_srv_conf_t;/p' "$hdr" \
    | grep -o '[a-z_]*;' | tr -d ';')
merge=$(sed -n '/^void \*scep_ota_merge_srv_conf/,/^}/p' "$src")
missing=""
for f in $fields; do
    case "$f" in caps_line) continue ;; esac   # config-read bookkeeping only
    printf '%s\n' "$merge" | grep -q "sc->$f\b\|sc->material\b\|(\(material\.\)\?$f)" \
        || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "fields not merged in scep_ota_merge_srv_conf:$missing"; exit 1
fi
echo "config fields: all merged"
