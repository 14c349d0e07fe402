# minrnn: make | make test | make sanitize | make bench | make cuda | make fuzz | make map | make mpi | make compare
# Variables: CC, NO_OMP=1, OPT, MPICC.
CC          ?= cc
CXX         ?= c++
OPT         ?= -O3 -march=native -ffp-contract=fast
WARN        := -Wall -Wextra -Werror
CPPFLAGS    := -I. -Itests
ifeq ($(NO_OMP),1)
OMP :=
else
OMP := -fopenmp
endif
CFLAGS  := -std=c99 $(OPT) $(WARN) $(OMP)
LDLIBS  := -lm -lpthread
BUILD   := build

TEST_SRCS := $(wildcard tests/test_*.c)
TESTS     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
SAN_TESTS := $(patsubst tests/%.c,$(BUILD)/san/%,$(TEST_SRCS))
EX_SRCS   := $(wildcard examples/*.c)
EXAMPLES  := $(patsubst examples/%.c,$(BUILD)/minrnn-%,$(EX_SRCS))
BENCH_SRCS:= $(wildcard bench/bench_*.c)
BENCHES   := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
HDRS      := minrnn.h tests/mr_test.h tests/ckpt_common.h tests/model_common.h tests/cli_common.h

.PHONY: all test sanitize bench compile-checks clean cuda fuzz map mpi compare
all: $(EXAMPLES)

$(BUILD)/minrnn-%: examples/%.c $(HDRS) examples/common.h examples/dp.h examples/plot.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LDLIBS)

# examples/embed.c: the shipped int8 model compiled in as a C array (minrnn-convert embed
# writes it with the memory its inference needs); the library part without stdio, OpenMP
# or malloc.
EMBED_MODEL ?= tests/fixtures/embed_small_q8.bin
$(BUILD)/embed/embed_model.h: $(EMBED_MODEL) $(BUILD)/minrnn-convert
	@mkdir -p $(dir $@)
	$(BUILD)/minrnn-convert embed $(EMBED_MODEL) $@ >/dev/null
$(BUILD)/minrnn-embed: examples/embed.c minrnn.h $(BUILD)/embed/embed_model.h
	$(CC) -std=c99 $(OPT) $(WARN) $(CPPFLAGS) -I$(BUILD)/embed $< -o $@ -lm

$(BUILD)/tests/%: tests/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LDLIBS)

# Sanitized tests: ASan + UBSan, no OpenMP (its runtime confuses ASan's leak checker).
$(BUILD)/san/%: tests/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all $(WARN) $(CPPFLAGS) $< -o $@ $(LDLIBS)

# The header compiles as C99 (gcc, clang), as C++, in two translation units,
# static, and without stdio/OpenMP; the QUICK START of its doc block compiles
# (C99 and C++) and runs.
compile-checks:
	@mkdir -p $(BUILD)/compile
	$(CC) -std=c99 $(WARN) -pedantic -O1 $(CPPFLAGS) tests/compile/impl.c tests/compile/user.c -o $(BUILD)/compile/two_tu -lm && $(BUILD)/compile/two_tu >/dev/null
	$(CXX) -x c++ -std=c++11 $(WARN) -O1 $(CPPFLAGS) tests/compile/impl.c -c -o $(BUILD)/compile/impl_cpp.o
	$(CC) -std=c99 $(WARN) -O1 $(CPPFLAGS) tests/compile/static.c -o $(BUILD)/compile/static -lm && $(BUILD)/compile/static
	$(CC) -std=c99 $(WARN) -O1 -fopenmp $(CPPFLAGS) tests/compile/nostdio.c -o $(BUILD)/compile/nostdio -lm && $(BUILD)/compile/nostdio
	$(CC) -std=c99 $(WARN) -pedantic -O1 -DMINRNN_NO_TRAINING -DMINRNN_NO_STDIO $(CPPFLAGS) -c tests/compile/impl.c -o $(BUILD)/compile/infer.o
	$(CXX) -x c++ -std=c++11 $(WARN) -O1 -DMINRNN_NO_TRAINING $(CPPFLAGS) -c tests/compile/impl.c -o $(BUILD)/compile/infer_cpp.o
	if command -v clang >/dev/null; then clang -std=c99 $(WARN) -O1 -DMINRNN_NO_TRAINING $(CPPFLAGS) -c tests/compile/impl.c -o $(BUILD)/compile/infer_clang.o; fi
	if command -v clang >/dev/null; then clang -std=c99 $(WARN) -O1 $(CPPFLAGS) tests/compile/impl.c tests/compile/user.c -o $(BUILD)/compile/two_tu_clang -lm; fi
	tests/compile/quickstart.sh $(BUILD)/compile/qs $(CC) -std=c99 $(WARN) -pedantic -O2
	tests/compile/quickstart.sh $(BUILD)/compile/qs_cxx $(CXX) -x c++ -std=c++11 $(WARN) -O1

# The data-parallel trainer (examples/train.c over MPI), when mpicc exists;
# make test builds it then, and tests/test_mpi runs it under mpirun.
MPICC   ?= mpicc
HAVE_MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_MPI),1)
MPI_BIN := $(BUILD)/minrnn-train-mpi
endif
$(BUILD)/minrnn-train-mpi: examples/train.c examples/common.h examples/dp.h $(HDRS)
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -DMINRNN_MPI $(CPPFLAGS) $< -o $@ $(LDLIBS)
$(BUILD)/bench/mpi_allreduce: bench/mpi_allreduce.c minrnn.h
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LDLIBS)
mpi:
	@command -v $(MPICC) >/dev/null 2>&1 || { echo "make mpi: no $(MPICC) (Debian: apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
	@$(MAKE) --no-print-directory $(BUILD)/minrnn-train-mpi

test: $(TESTS) $(EXAMPLES) $(MPI_BIN) compile-checks
	@tests/run_all.sh $(TESTS)

sanitize: $(SAN_TESTS)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 MR_TEST_QUICK=1 tests/run_all.sh $(SAN_TESTS)

$(BUILD)/bench/%: bench/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LDLIBS) -lopenblas

# One at a time (two benchmarks on 2 cores ruin each other). OpenBLAS runs
# with OPENBLAS_CORETYPE unset, so it uses its AVX-512 kernels.
bench: $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; env -u OPENBLAS_CORETYPE $$b || exit 1; done
	@echo "== $(BUILD)/bench/bench_train --arch rwkv6 --ffn rwkv-cmix --ffn-hidden 448"; $(BUILD)/bench/bench_train --arch rwkv6 --ffn rwkv-cmix --ffn-hidden 448
	@echo "== MoE (4 experts, top-1, hidden 256: the dense SwiGLU 512's active weights) beside that dense model"
	@$(BUILD)/bench/bench_train --arch mingru --ffn moe --experts 4 --top-k 1 --ffn-hidden 256
	@$(BUILD)/bench/bench_train --arch mingru --ffn swiglu --ffn-hidden 512
	@echo "== GRU + RWKV-6 + MoE (gru+rwkv6*2, MoE 4 experts top-1)"; $(BUILD)/bench/bench_train --arch "gru+rwkv6*2" --ffn moe --ffn-hidden 256
	@if [ "$(HAVE_MPI)" = 1 ]; then $(MAKE) --no-print-directory $(BUILD)/minrnn-train-mpi $(BUILD)/bench/mpi_allreduce && echo "== bench/bench_mpi.sh" && bench/bench_mpi.sh; fi
	@if [ -f bench/bench_train_torch.py ]; then echo "== bench/bench_train_torch.py"; /usr/bin/python3 bench/bench_train_torch.py --variants seq,log,rwkv6-chunk || true; fi

# libFuzzer over every reader of untrusted bytes (checkpoints, training
# restores, session files, safetensors, tokenizer.json), ASan + UBSan, for
# FUZZ_SECONDS; a finding (crash, sanitizer report, leak, an allocation over
# 512 MiB, RSS over 2 GiB, an input slower than 10 s) fails the rule and leaves
# the input in build/fuzz/artifacts/. Seeds: tests/fuzz/make_corpus.c.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
$(FUZZ_DIR)/fuzz_ckpt: tests/fuzz/fuzz_ckpt.c tests/fuzz/fuzz_common.h minrnn.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(WARN) $(CPPFLAGS) $< -o $@ -lm

$(FUZZ_DIR)/make_corpus: tests/fuzz/make_corpus.c tests/fuzz/fuzz_common.h minrnn.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c99 -O1 $(WARN) $(CPPFLAGS) $< -o $@ -lm

fuzz: $(FUZZ_DIR)/fuzz_ckpt $(FUZZ_DIR)/make_corpus
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	$(FUZZ_DIR)/make_corpus $(FUZZ_DIR)/corpus
	@echo "fuzzing for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/fuzz.log)"
	@if $(FUZZ_DIR)/fuzz_ckpt -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/corpus > $(FUZZ_DIR)/fuzz.log 2>&1; then \
	    grep -E '^#[0-9]+.*DONE|^Done|stat::number_of_executed_units|stat::peak_rss_mb' $(FUZZ_DIR)/fuzz.log; echo "fuzz: no finding"; \
	else tail -n 60 $(FUZZ_DIR)/fuzz.log; echo "fuzz: FINDING (input in $(FUZZ_DIR)/artifacts/)"; exit 1; fi

# The default set of models side by side on the shipped corpus, COMPARE_BUDGET seconds
# each (about 40 minutes in all with 300), into runs/compare/ (report.html, loss.svg,
# summary.csv, history.json).
COMPARE_BUDGET ?= 300
compare: $(BUILD)/minrnn-compare $(BUILD)/minrnn-train
	$(BUILD)/minrnn-compare --data data/tinyshakespeare.txt --budget $(COMPARE_BUDGET) --out runs/compare

# The header's map: every named section with its line (declarations, then the implementation).
map:
	@grep -n '^/\* \[\|^/\* ---* \[' minrnn.h

clean:
	rm -rf $(BUILD)
