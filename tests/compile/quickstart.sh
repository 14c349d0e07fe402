#!/bin/sh
# The QUICK START in minrnn.h's doc block is a program: cut it out of the
# header (the lines between "QUICK START" and "NAMING", less their 5-space
# indent), compile it with the given compiler and flags, and run it. It must
# print its losses (falling) and a sample, and exit 0.
# Usage: tests/compile/quickstart.sh OUTDIR CC [FLAGS...]
set -eu
out=$1; shift
mkdir -p "$out"
sed -n '/^   QUICK START/,/^   NAMING/p' minrnn.h | sed '1d;$d' | sed 's/^     //' > "$out/quickstart.c"
[ -s "$out/quickstart.c" ] || { echo "quickstart: no QUICK START block in minrnn.h"; exit 1; }
"$@" -I. "$out/quickstart.c" -o "$out/quickstart" -lm
"$out/quickstart" > "$out/quickstart.out"
first=$(sed -n 's/^step 0 loss \([0-9.]*\)$/\1/p' "$out/quickstart.out")
last=$(sed -n 's/^step 40 loss \([0-9.]*\)$/\1/p' "$out/quickstart.out")
[ -n "$first" ] && [ -n "$last" ] || { echo "quickstart: unexpected output:"; cat "$out/quickstart.out"; exit 1; }
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }' || { echo "quickstart: loss did not fall ($first -> $last)"; exit 1; }
echo "quickstart: compiled and ran, loss $first -> $last"
