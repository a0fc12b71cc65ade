# vggserve: two commands do all the set-up on a fresh machine.
#   make run    builds (creating the LibTorch venv if needed) and starts the service
#   make test   builds and runs the whole test suite
# The venv holds PyTorch 2.9.0 from PyPI: it is where LibTorch comes from (build and rpath).

PYTHON    ?= python3
VENV      := .venv
TORCH     := 2.9.0
STAMP     := $(VENV)/.torch-$(TORCH)
LIBTORCH  := $(VENV)/libtorch
CARGO     ?= cargo
BIN       := target/release/vggserve
SHARED    ?= ../shared
WEIGHTS   ?= weights/vgg16.safetensors

.PHONY: venv build run test test-rust test-dashboard test-contract lint bench fuzz clean

venv: $(STAMP)

# torch==2.9.0 is the version burn-tch 0.22 (tch 0.22) is written against; pinned because the
# LIBTORCH route skips tch's own version check. $(LIBTORCH) is a stable link to
# site-packages/torch whatever the Python minor version, so .cargo/config.toml can name it.
$(STAMP): tests/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==$(TORCH) -r tests/requirements.txt
	ln -sfn "$$($(VENV)/bin/python -c "import os, torch; print(os.path.relpath(os.path.dirname(torch.__file__), \"$(VENV)\"))")" $(LIBTORCH)
	touch $@

build: venv
	$(CARGO) build --release --locked

# Without weights in weights/ and without VGGSERVE_WEIGHTS, fetch the official ones first
# (`vggserve weights fetch` says what it does, and fails with a one-line hint offline).
run: build
	@if [ -z "$$VGGSERVE_WEIGHTS" ] && [ ! -f $(WEIGHTS) ]; then $(BIN) weights fetch --out $(WEIGHTS) || exit 1; fi
	$(BIN) serve

test: venv test-rust test-dashboard test-contract

# Tests run in the release profile so that they share the dependency build with `make build`.
# Beside a throwaway PostgreSQL cluster and S3 server (tests/services/with_postgres.sh,
# with_s3.sh): the store's contract runs on both backends, artifacts go through a real
# bucket, and the scale-out tests start replicas and workers on them.
test-rust: venv
	VGGSERVE_SHARED=$(abspath $(SHARED)) VGGSERVE_REQUIRE_POSTGRES=1 VGGSERVE_REQUIRE_S3=1 \
	  tests/services/with_postgres.sh tests/services/with_s3.sh \
	  $(CARGO) test --release --locked -- --test-threads=1

test-dashboard: build
	VGGSERVE_SHARED=$(abspath $(SHARED)) tests/dashboard/run.sh

# Schemathesis against a live server, driven by its own GET /openapi.json (tests/contract/run.sh).
test-contract: build
	VGGSERVE_SHARED=$(abspath $(SHARED)) tests/contract/run.sh

lint: venv
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

bench: build
	$(BIN) bench --weights $(SHARED)/weights/vgg16-standin.safetensors --dir $(SHARED)/datasets/cats_and_dogs_small/train --out bench-out/bench.json

# Fuzz one target for FUZZ_SECONDS, starting from its seeds in fuzz/seeds/<target>:
# FUZZ_TARGET=upload (the /predict body, fuzz/fuzz_targets/upload.rs) or archive (the
# dataset archive reader, zip/tar/tar.gz, fuzz/fuzz_targets/archive.rs). No sanitizer: the
# toolchain here is stable Rust, and each target checks its own invariants; libFuzzer still
# catches panics, aborts, leaks of time and memory.
FUZZ_SECONDS ?= 600
FUZZ_TARGET ?= upload
fuzz: venv
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus/$(FUZZ_TARGET)
	cd fuzz && LD_LIBRARY_PATH=$(abspath $(LIBTORCH))/lib $(CARGO) fuzz run --sanitizer none \
	  --release $(FUZZ_TARGET) corpus/$(FUZZ_TARGET) seeds/$(FUZZ_TARGET) -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=4096 -timeout=10

clean:
	$(CARGO) clean
