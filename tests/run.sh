#!/usr/bin/env bash
# Runs each test binary given as argument; each prints TAP lines ("ok ..." / "not ok ...").
# Prints every failure, one line per binary, and the closing summary "N passed, N failed".
set -u
export STYLENET_SHARED=${STYLENET_SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
pass=0; fail=0; crashed=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  p=$(grep -c '^ok ' <<<"$out"); f=$(grep -c '^not ok ' <<<"$out")
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; crashed=$((crashed+1)); echo "$out" | tail -20; echo "not ok - $t exited with status $rc"; fi
  grep '^not ok ' <<<"$out" | sed "s|^|$t: |"
  grep '^# ' <<<"$out" | grep -v '^# case ' | sed "s|^|$t: |" | head -40
  printf '%-44s %4d passed, %d failed\n' "${t#*/tests/}" "$p" "$f"
  pass=$((pass+p)); fail=$((fail+f))
done
echo
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
