#!/bin/bash
# OTA Phase 2 and Phase 3 profiles/s against their RSA bound and the
# static-file rate of the same httpd, in one run (see bench/ota.py).
#
#   bench/ota.sh [--requests N] [--levels 1,2,4,16] [--mpm event]
#
# Needs wrk, a built module and CLI, apache2, openssl, python3-cryptography.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/ota.py" "$@"
