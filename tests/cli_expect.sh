#!/usr/bin/env bash
# cli_expect.sh WANT_STATUS REGEX -- COMMAND...: runs COMMAND, checks its exit status
# ("0" or "nonzero") and that its combined output matches REGEX (grep -E).
set -u
want=$1 regex=$2
shift 3
out=$("$@" 2>&1)
status=$?
echo "$out" | head -c 4000
if [ "$want" = 0 ] && [ $status -ne 0 ]; then echo "FAIL: exit status $status, wanted 0"; exit 1; fi
if [ "$want" = nonzero ] && [ $status -eq 0 ]; then echo "FAIL: exit status 0, wanted non-zero"; exit 1; fi
if ! printf '%s' "$out" | grep -Eq -- "$regex"; then echo "FAIL: output does not match /$regex/"; exit 1; fi
