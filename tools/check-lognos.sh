#!/bin/sh
# Every log tag SCEPLOGNO(nnnn) belongs to one call site: fail on duplicates
# and on malformed tags.
top="${top_srcdir:-.}"
tags=$(grep -ho 'SCEPLOGNO([^)]*)' "$top"/mod_scep_ota/*.c "$top"/tools/*.c 2>/dev/null)
bad=$(printf '%s\n' "$tags" | grep -v '^SCEPLOGNO([0-9]\{4\})$' | grep -v '^$')
dups=$(printf '%s\n' "$tags" | grep -v '^$' | sort | uniq -d)
if [ -n "$bad" ]; then
    echo "malformed log tags (want SCEPLOGNO(nnnn)):"; echo "$bad"; exit 1
fi
if [ -n "$dups" ]; then
    echo "log tags used at more than one call site:"; echo "$dups"; exit 1
fi
echo "log tags: $(printf '%s\n' "$tags" | grep -c SCEPLOGNO) unique"
