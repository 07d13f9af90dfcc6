# mycelium-shm: `make demo` runs the main job, `make test` runs every test.
# Both install what they need (Python packages from PyPI; the OCaml
# toolchain from Debian packages; Rust crates from crates.io).

PYTHON ?= python3
CC ?= gcc
CFLAGS_CORE := -std=c11 -Wall -Wextra -Werror -Icsrc
CBUILD := tests/c/build
CORE_SRC := csrc/ring.c
CORE_HDR := csrc/ring.h csrc/myc_atomic.h
STAMP := build/.installed

.PHONY: all deps build demo test test-c test-py test-rust test-ocaml lint bench bench-deps bench-quick clean

all: build

# -- Python ---------------------------------------------------------------

$(STAMP): pyproject.toml setup.py mycelium_shm/_ffi_build.py $(CORE_SRC) $(CORE_HDR)
	$(PYTHON) -m pip install -q --disable-pip-version-check "setuptools>=68" wheel "cffi>=1.15" \
		"pytest>=7" "hypothesis>=6" "psutil>=5" "ruff>=0.4" "msgpack>=1" "matplotlib>=3.5"
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation -e .
	@mkdir -p build && touch $@

deps build: $(STAMP)

demo: $(STAMP)
	$(PYTHON) -m mycelium_shm.demo

lint: $(STAMP)
	$(PYTHON) -m ruff check mycelium_shm tests bench examples

test-py: $(STAMP)
	$(PYTHON) -m pytest -q tests

# -- C core: unit tests, ASan+UBSan, TSan stress ---------------------------

$(CBUILD)/test_ring: tests/c/test_ring.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O2 -g $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/test_ring_asan: tests/c/test_ring.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/stress_ring: tests/c/stress_ring.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O2 -g $< $(CORE_SRC) -o $@ -lpthread

$(CBUILD)/stress_ring_tsan: tests/c/stress_ring.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_CORE) -O1 -g -fsanitize=thread $< $(CORE_SRC) -o $@ -lpthread

test-c: $(CBUILD)/test_ring $(CBUILD)/test_ring_asan $(CBUILD)/stress_ring $(CBUILD)/stress_ring_tsan
	$(CBUILD)/test_ring
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(CBUILD)/test_ring_asan
	$(CBUILD)/stress_ring 4 100000
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(CBUILD)/stress_ring_tsan 4 20000

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

# -- everything -----------------------------------------------------------

# The Python tests include the cross-language ones, which start the Rust and
# OCaml programs: they run after the bindings are built and tested.
test: test-c lint test-rust test-ocaml test-py

# The peers the benchmark compares against (not needed by the tests).
bench-deps: $(STAMP)
	$(PYTHON) -m pip install -q --disable-pip-version-check "pyzmq>=25" "faster-fifo>=1.4" iceoryx2

bench: bench-deps
	$(PYTHON) -m bench

bench-quick: bench-deps
	$(PYTHON) -m bench --quick

clean:
	rm -rf build $(CBUILD) mycelium_shm/_ring*.so *.egg-info
