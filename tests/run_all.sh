#!/bin/sh
# Runs every test binary given as arguments and sums their summary lines
# ("N passed, N failed[, N skipped]") into one final line. A binary that
# crashes or prints no summary counts as one failure.
total_p=0; total_f=0; total_s=0
for t in "$@"; do
    echo "== $t"
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^ok ' | grep -v '^[0-9]* passed' 
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        echo "  $t: no summary line (exit $rc)"; total_f=$((total_f + 1)); continue
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || true)
    [ -z "$s" ] && s=0
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "  $t: exit $rc"; fi
    echo "   $line"
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
done
if [ "$total_s" -gt 0 ]; then
    echo "$total_p passed, $total_f failed, $total_s skipped"
else
    echo "$total_p passed, $total_f failed"
fi
[ "$total_f" -eq 0 ]
