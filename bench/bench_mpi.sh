#!/bin/sh
# Data-parallel training on this machine (make bench runs it when mpicc exists):
# tokens/s of the default model (d=128, 4 layers, batch 32 x 256) trained by
#   minrnn-train with 2 threads (P = 1),
#   minrnn-train-mpi, P = 2 processes of 1 thread (fast float allreduce),
#   the same with --reproducible (exact fixed-point sum), and over TCP (loopback)
# the rate between step 10 and the last step of each run's history.csv, and the
# trainer's own time per step in the gradient reduction; then the allreduce of the
# default model's gradients alone (bench/mpi_allreduce.c), over shared memory and
# over TCP. Usage: bench/bench_mpi.sh [DATA (../shared/data/tinyshakespeare.txt)] [STEPS (40)]
set -eu
DATA=${1:-../shared/data/tinyshakespeare.txt}
STEPS=${2:-40}
OUT=build/bench-mpi
if [ ! -f "$DATA" ]; then echo "($DATA missing: tests/data/shakespeare_12k.txt instead)"; DATA=tests/data/shakespeare_12k.txt; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --bind-to none"
FLAGS="--data $DATA --steps $STEPS --eval-every 0 --log-every 10 --save-every 0 --dropout 0"
mkdir -p $OUT
rate() {   # k tokens/s between the first step row at or after step 10 and the last step row
    awk -F, 'NR > 1 && $4 != "" && $7 == "" && $1 >= 10 { if (!n++) { t0 = $3; k0 = $2 } t = $3; k = $2 }
             END { if (t > t0) printf "%.1f", (k - k0) / (t - t0) / 1000; else printf "n/a" }' "$1/history.csv"
}
reduce() { grep -o 'gradient reduction: [0-9.]* ms per step' "$1" | grep -o '[0-9.]* ms' || echo "-"; }
run() {   # name, command...
    name=$1; shift
    rm -rf "$OUT/$name"
    "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1 || { echo "$name: failed (see $OUT/$name.log)"; tail -n 5 "$OUT/$name.log"; return 1; }
    printf '%-44s %8s k tokens/s   reduction %s per step\n' "$name" "$(rate "$OUT/$name")" "$(reduce "$OUT/$name.log")"
}
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /'
echo "default model, batch 32 x 256, $STEPS steps, $(nproc) cores"
run "P=1, 2 threads (minrnn-train)"            build/minrnn-train $FLAGS --threads 2
run "P=2 x 1 thread, fast (shared memory)"     $MPIRUN --mca btl self,vader -np 2 build/minrnn-train-mpi $FLAGS --threads 1
run "P=2 x 1 thread, --reproducible"           $MPIRUN --mca btl self,vader -np 2 build/minrnn-train-mpi $FLAGS --threads 1 --reproducible
run "P=2 x 1 thread, fast (TCP loopback)"      $MPIRUN --mca btl self,tcp --mca btl_tcp_if_include lo -np 2 build/minrnn-train-mpi $FLAGS --threads 1
run "P=1, 2 threads, --reproducible (4 shards)" build/minrnn-train $FLAGS --threads 2 --reproducible
echo "the allreduce alone:"
printf 'shared memory: '; $MPIRUN --mca btl self,vader -np 2 build/bench/mpi_allreduce
printf 'TCP loopback:  '; $MPIRUN --mca btl self,tcp --mca btl_tcp_if_include lo -np 2 build/bench/mpi_allreduce
