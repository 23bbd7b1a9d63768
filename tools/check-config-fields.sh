#!/bin/sh
# Every field of the per-server config struct (and of the structs it
# embeds: CA material, OTA settings) must be handled by the merge function
# or a merge_* helper it calls, so a virtual host never silently loses a
# setting.
top="${top_srcdir:-.}"
hdr="$top/mod_scep_ota/mod_scep_ota_config.h"
cahdr="$top/include/scep_ota/scep_ca.h"
otahdr="$top/include/scep_ota/ota_profile.h"
src="$top/mod_scep_ota/mod_scep_ota_config.c"
fields() {
    sed -n "/^typedef struct $2 {/,/^} $2;/p" "$1" | sed 's|/\*.*||' | grep -v '^ *[/*}]' \
        | grep -o '[a-z_]*;' | tr -d ';'
}
# the merge function, and the static merge_* helpers it calls (each field
# group in one); a helper it does not call counts for nothing
main=$(sed -n '/^void \*scep_ota_merge_srv_conf(/,/^}/p' "$src")
if [ -z "$main" ]; then
    echo "scep_ota_merge_srv_conf not found in $src"; exit 1
fi
merge="$main"
for h in $(printf '%s\n' "$main" | grep -o '\bmerge_[a-z_]*(' | tr -d '(' | sort -u); do
    body=$(sed -n "/^static void $h(/,/^}/p" "$src")
    if [ -z "$body" ]; then
        echo "$h, called by scep_ota_merge_srv_conf, not found in $src"; exit 1
    fi
    merge="$merge
$body"
done
missing=""
for f in $(fields "$hdr" scep_ota_srv_conf_t); do
    case "$f" in material|ota_set) continue ;; esac
    printf '%s\n' "$merge" | grep -q "sc->$f\b" || missing="$missing $f"
done
for f in $(fields "$cahdr" scep_ca_material_t); do
    printf '%s\n' "$merge" | grep -q "sc->material\.$f\b" || missing="$missing material.$f"
done
for f in $(fields "$otahdr" ota_settings_t); do
    printf '%s\n' "$merge" | grep -q "sc->ota_set\.$f\b" || missing="$missing ota_set.$f"
done
if [ -n "$missing" ]; then
    echo "fields not merged in scep_ota_merge_srv_conf:$missing"; exit 1
fi
echo "config fields: all merged"
