#!/bin/sh
# Every directive the module defines is documented in the README's
# reference and in the annotated conf-examples/scep_ota.conf, and nothing
# documented there is unknown to the module.
top="${top_srcdir:-.}"
code=$(cat "$top"/mod_scep_ota/mod_scep_ota*.c \
    | grep -oE '(AP_INIT_[A-Z0-9]+|SCEP_OTA_FILE|SCEP_OTA_ARG)\("(SCEP|OTA)[A-Za-z]+"' \
    | grep -oE '"[A-Za-z]+"' | tr -d '"' | sort -u)
rc=0
for d in $code; do
    grep -q "\`$d\`" "$top/README.md" || { echo "README.md lacks $d"; rc=1; }
    grep -q "^ *#* *$d\b" "$top/conf-examples/scep_ota.conf" \
        || grep -q "# .*\b$d\b" "$top/conf-examples/scep_ota.conf" \
        || { echo "conf-examples/scep_ota.conf lacks $d"; rc=1; }
done
for d in $(grep -oE '^\| `(SCEP|OTA)[A-Za-z]+`' "$top/README.md" | grep -oE '[A-Za-z]+' ); do
    printf '%s\n' "$code" | grep -qx "$d" || { echo "README.md documents unknown $d"; rc=1; }
done
[ $rc = 0 ] && echo "directive docs: $(printf '%s\n' "$code" | wc -l) directives documented"
exit $rc
