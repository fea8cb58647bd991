# rt: an async runtime in Rust with C and Python faces.
#
#   make demo   build everything and run the examples end to end
#   make test   install what the tests need, then run every test
#   make bench  rt vs the peer runtimes, printed as a table of ratios

CARGO ?= cargo
PYTHON ?= python3
# Bound on loom's preemptions per model: keeps the models to seconds.
LOOM_MAX_PREEMPTIONS ?= 2

.PHONY: all build demo test deps lint test-rust test-loom bench clean

all: build

build:
	$(CARGO) build --release --workspace --all-targets

demo: build
	$(CARGO) run --release -p rt-core --example demo
	$(CARGO) run --release -p rt-core --example services

# Everything the tests use comes from rustup components and crates.io.
deps:
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

test: deps lint test-rust test-loom

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

# loom builds with a different cfg: its own target dir avoids rebuilding the
# normal one each time.
test-loom:
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=$(LOOM_MAX_PREEMPTIONS) \
		$(CARGO) test -p rt-core --lib --release --target-dir target/loom -- loom

bench:
	$(CARGO) bench -p rt-core --bench rt_vs_tokio
	$(CARGO) bench -p rt-core --bench drivers_vs_tokio
	$(PYTHON) scripts/bench_table.py

clean:
	$(CARGO) clean
