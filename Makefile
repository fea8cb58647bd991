# rt: an async runtime in Rust with C and Python faces.
#
#   make demo   build everything and run the examples end to end
#   make test   install what the tests need, then run every test
#   make bench  rt vs the peer runtimes, printed as a table of ratios

CARGO ?= cargo
PYTHON ?= python3
# Bound on loom's preemptions per model: keeps the models to seconds.
LOOM_MAX_PREEMPTIONS ?= 2

.PHONY: install all build demo demo-c demo-cpp demo-python test deps lint test-rust test-loom test-c test-install lib header \
	check-header check-header-compiles check-symbols bench bench-tokio bench-libuv bench-python bench-counts clean \
	venv python test-python conformance-python

# The C library and its tools.
TOOLS := $(CURDIR)/.tools
CBINDGEN := $(TOOLS)/bin/cbindgen
CBINDGEN_VERSION := 0.29.4
LIB_DIR := $(CURDIR)/target/release
C_BUILD := $(CURDIR)/target/c
CC ?= cc
CXX ?= c++
C_TESTS := test_core test_drivers test_host test_io_contract test_runtime_contract test_adversarial

all: build

# rtpy's optimised build is maturin's (`make python`): its pyo3 config differs
# from a plain cargo build's, so building it here too would rebuild pyo3 each
# time one follows the other.
build:
	$(CARGO) build --release --workspace --all-targets --exclude rtpy

demo: build demo-c demo-python
	$(CARGO) run --release -p rt-core --example demo
	$(CARGO) run --release -p rt-core --example services

# The C examples, built the way users build them: against an installed
# librt, through pkg-config.
DEMO_PREFIX := $(CURDIR)/target/prefix
C_EXAMPLES := $(basename $(notdir $(wildcard examples/c/*.c)))

demo-c: deps
	$(MAKE) --no-print-directory install PREFIX=$(DEMO_PREFIX)
	@mkdir -p $(C_BUILD)/examples
	@for e in $(C_EXAMPLES); do \
		$(CC) -std=c11 -Wall -Wextra -Werror -O2 examples/c/$$e.c -o $(C_BUILD)/examples/$$e \
			$$(PKG_CONFIG_PATH=$(DEMO_PREFIX)/lib/pkgconfig pkg-config --cflags --libs rt) \
			-Wl,-rpath,$(DEMO_PREFIX)/lib -lpthread || exit 1; \
	done
	@for e in $(C_EXAMPLES); do echo "== examples/c/$$e"; $(C_BUILD)/examples/$$e || exit 1; done
	$(MAKE) --no-print-directory demo-cpp CPP_PREFIX=$(DEMO_PREFIX)

# The C++ example, built the way CMake users build: find_package(rt) in an
# installed prefix (CPP_PREFIX), linked once to rt::rt and once to
# rt::rt_static; both binaries run.
CPP_PREFIX ?= $(DEMO_PREFIX)
demo-cpp:
	@rm -rf $(C_BUILD)/cpp; mkdir -p $(C_BUILD)
	cmake -S examples/cpp -B $(C_BUILD)/cpp -DCMAKE_PREFIX_PATH=$(CPP_PREFIX) -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_CXX_COMPILER=$(CXX) > $(C_BUILD)/cpp.configure.log || (cat $(C_BUILD)/cpp.configure.log; exit 1)
	cmake --build $(C_BUILD)/cpp
	@echo "== examples/cpp/main (rt::rt)"; $(C_BUILD)/cpp/cpp_main
	@echo "== examples/cpp/main (rt::rt_static)"; $(C_BUILD)/cpp/cpp_main_static

# Everything the tests use comes from rustup components, crates.io and
# Debian packages (valgrind), installed here when missing.
deps: $(CBINDGEN)
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@command -v valgrind >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind)
	@for tool in pkg-config:pkg-config cmake:cmake gdb:gdb objcopy:binutils readelf:binutils; do \
		command -v $${tool%%:*} >/dev/null 2>&1 || \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $${tool#*:}) || exit 1; \
	done
	@# The Python venv (make venv) needs the venv module and ensurepip.
	@$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv)

$(CBINDGEN):
	$(CARGO) install --quiet --root $(TOOLS) cbindgen --version $(CBINDGEN_VERSION) --locked

test: deps lint test-rust test-loom test-c test-install test-python

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

# loom builds with a different cfg: its own target dir avoids rebuilding the
# normal one each time.
test-loom:
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=$(LOOM_MAX_PREEMPTIONS) \
		$(CARGO) test -p rt-core -p rt-ffi --lib --release --target-dir target/loom -- loom

# ---- the C library: librt.so / librt.a and include/rt.h ----

lib:
	$(CARGO) build --release -p rt-ffi
	@# The soname is librt.so.MAJOR: let programs linked here find it.
	@ln -sf librt.so $(LIB_DIR)/librt.so.$(RT_MAJOR)

# Regenerates the header from rt-ffi/src.
header: $(CBINDGEN)
	$(CBINDGEN) -q --config rt-ffi/cbindgen.toml --crate rt-ffi --output include/rt.h rt-ffi

# Fails when the committed header differs from what the sources generate.
check-header: $(CBINDGEN)
	@mkdir -p $(C_BUILD)
	$(CBINDGEN) -q --config rt-ffi/cbindgen.toml --crate rt-ffi --output $(C_BUILD)/rt.h rt-ffi
	@diff -u include/rt.h $(C_BUILD)/rt.h || \
		(echo "include/rt.h is stale: run 'make header' and commit it" && exit 1)

# The header compiles as strict C99 and as C++17.
check-header-compiles:
	@mkdir -p $(C_BUILD)
	printf '#include "rt.h"\nint main(void) { return rt_version() == RT_VERSION_HEX ? 0 : 1; }\n' > $(C_BUILD)/header_c.c
	$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c $(C_BUILD)/header_c.c -o $(C_BUILD)/header_c.o
	printf '#include "rt.h"\nint main() { return rt_version() == RT_VERSION_HEX ? 0 : 1; }\n' > $(C_BUILD)/header_cpp.cpp
	$(CXX) -std=c++17 -Wall -Werror -Iinclude -c $(C_BUILD)/header_cpp.cpp -o $(C_BUILD)/header_cpp.o

# Only rt_* symbols are exported by the shared library.
check-symbols: lib
	@extra=$$(nm -D --defined-only $(LIB_DIR)/librt.so | awk '{print $$3}' | grep -v '^rt_' || true); \
	if [ -n "$$extra" ]; then echo "librt.so exports non-rt_ symbols:"; echo "$$extra"; exit 1; fi
	@echo "librt.so exports $$(nm -D --defined-only $(LIB_DIR)/librt.so | awk '{print $$3}' | grep -c '^rt_') rt_* symbols and nothing else"

# C tests against librt.so, then again under valgrind. --fair-sched=yes: valgrind
# runs one thread at a time, and its default lock lets a runtime's busy
# workers (always-ready fds, self-waking tasks) starve the test's own thread
# for minutes. RT_TEST_FILTER=<substring> runs only the matching cases.
test-c: lib check-header check-header-compiles check-symbols
	@mkdir -p $(C_BUILD)
	@for t in $(C_TESTS); do \
		$(CC) -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Itests/c tests/c/$$t.c \
			-L$(LIB_DIR) -lrt -Wl,-rpath,$(LIB_DIR) -lpthread -o $(C_BUILD)/$$t || exit 1; \
	done
	@for t in $(C_TESTS); do echo "== $$t"; $(C_BUILD)/$$t || exit 1; done
	@for t in $(C_TESTS); do echo "== $$t under valgrind"; \
		RT_TEST_VALGRIND=1 valgrind -q --fair-sched=yes --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
			--suppressions=tests/c/valgrind.supp $(C_BUILD)/$$t || exit 1; \
	done

# ---- install: libraries (versioned soname), header, pkg-config file ----
PREFIX ?= /usr/local
RT_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
RT_MAJOR := $(firstword $(subst ., ,$(RT_VERSION)))

# librt.so is installed stripped; its debug info goes to
# <prefix>/lib/.debug/librt.so.VERSION.debug, named by the library's
# .gnu_debuglink, where gdb (and valgrind, perf) look for it.
STRIP_DIR := $(CURDIR)/target/strip
SO_FILE := librt.so.$(RT_VERSION)
# Pointer size of the build, for the CMake package's version check.
SIZEOF_VOID_P := $(shell echo $$(( $$(getconf LONG_BIT) / 8 )))

install: lib
	@mkdir -p $(STRIP_DIR)
	objcopy --only-keep-debug $(LIB_DIR)/librt.so $(STRIP_DIR)/$(SO_FILE).debug
	objcopy --strip-debug --strip-unneeded --add-gnu-debuglink=$(STRIP_DIR)/$(SO_FILE).debug \
		$(LIB_DIR)/librt.so $(STRIP_DIR)/$(SO_FILE)
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/.debug \
		$(DESTDIR)$(PREFIX)/lib/cmake/rt $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(STRIP_DIR)/$(SO_FILE) $(DESTDIR)$(PREFIX)/lib/$(SO_FILE)
	install -m 0644 $(STRIP_DIR)/$(SO_FILE).debug $(DESTDIR)$(PREFIX)/lib/.debug/$(SO_FILE).debug
	ln -sf $(SO_FILE) $(DESTDIR)$(PREFIX)/lib/librt.so.$(RT_MAJOR)
	ln -sf librt.so.$(RT_MAJOR) $(DESTDIR)$(PREFIX)/lib/librt.so
	install -m 0644 $(LIB_DIR)/librt.a $(DESTDIR)$(PREFIX)/lib/librt.a
	install -m 0644 include/rt.h $(DESTDIR)$(PREFIX)/include/rt.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(RT_VERSION)|' rt-ffi/rt.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/rt.pc
	for f in rtConfig rtConfigVersion; do \
		sed -e 's|@VERSION@|$(RT_VERSION)|g' -e 's|@MAJOR@|$(RT_MAJOR)|g' -e 's|@SIZEOF_VOID_P@|$(SIZEOF_VOID_P)|g' \
			rt-ffi/cmake/$$f.cmake.in > $(DESTDIR)$(PREFIX)/lib/cmake/rt/$$f.cmake || exit 1; \
	done

# What `make install` puts in a prefix, checked: a stripped librt.so whose
# debug info gdb finds, the CMake package (versions, both targets; the C++
# example built and run through it) and pkg-config.
TEST_PREFIX := $(CURDIR)/target/test-prefix
test-install: deps
	@rm -rf $(TEST_PREFIX)
	$(MAKE) --no-print-directory install PREFIX=$(TEST_PREFIX)
	bash tests/install/check_install.sh $(TEST_PREFIX) $(RT_VERSION)
	$(MAKE) --no-print-directory demo-cpp CPP_PREFIX=$(TEST_PREFIX)

bench: bench-tokio bench-libuv bench-python bench-counts

# rt-core against Tokio (criterion), then the table of rt/Tokio ratios.
bench-tokio:
	$(CARGO) bench -p rt-core --bench rt_vs_tokio
	$(CARGO) bench -p rt-core --bench drivers_vs_tokio
	$(PYTHON) scripts/bench_table.py

# librt against libuv: libuv's own benchmarks, replicated in C for both
# (benches/c), then the table of librt/libuv ratios. libuv comes from
# Debian's libuv1-dev. RT_BENCH_QUICK=1 shortens every run.
bench-libuv: lib
	@pkg-config --exists libuv 2>/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libuv1-dev pkg-config)
	$(PYTHON) scripts/bench_libuv.py $(if $(RT_BENCH_QUICK),--quick,)

# ---- Python: the rtpy package (bindings/python) ----
# A venv under the repo (.venv, ignored by git) with the pinned build and test
# tools; rtpy is built by maturin (the `dist` profile: release with
# link-time optimisation) and installed into it
# (editable: the native module goes next to rtpy/*.py). Stamp files make a
# second run a no-op until a source changes.
VENV := $(CURDIR)/.venv
VENV_PY := $(VENV)/bin/python
PY_REQUIREMENTS := bindings/python/requirements-dev.txt
VENV_STAMP := $(VENV)/.requirements-installed
RTPY_STAMP := $(VENV)/.rtpy-installed
RTPY_SOURCES := $(shell find rt-core/src bindings/python/src bindings/python/rtpy -type f \
	\( -name '*.rs' -o -name '*.py' -o -name '*.pyi' -o -name py.typed \) 2>/dev/null) \
	Cargo.toml Cargo.lock rt-core/Cargo.toml bindings/python/Cargo.toml bindings/python/pyproject.toml

venv: $(VENV_STAMP)

$(VENV_STAMP): $(PY_REQUIREMENTS)
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check -r $(PY_REQUIREMENTS)
	@touch $@

python: $(RTPY_STAMP)

$(RTPY_STAMP): $(VENV_STAMP) $(RTPY_SOURCES)
	cd bindings/python && VIRTUAL_ENV=$(VENV) $(VENV)/bin/maturin develop --quiet
	@touch $@

# The stubs against the native module, the package's types (mypy --strict),
# then the Python tests. All run from the repo's root, where `import rtpy`
# finds the installed package.
test-python: python
	$(VENV_PY) -m mypy.stubtest rtpy --allowlist bindings/python/stubtest-allowlist.txt
	$(VENV_PY) -m mypy --strict -p rtpy
	$(VENV_PY) -m pytest -q bindings/python/tests
	$(VENV_PY) bindings/python/conformance/run.py --loop rtpy --min-pass-rate $(CONFORMANCE_MIN)

# CPython's own asyncio tests against a loop (LOOP=asyncio|uvloop|rloop|rtpy;
# uvloop / rloop must be installed in the venv). `make test` runs them on
# rtpy's loop and fails below CONFORMANCE_MIN percent of the applicable tests.
CONFORMANCE_MIN ?= 99
LOOP ?= asyncio
conformance-python: python
	$(VENV_PY) bindings/python/conformance/run.py --loop $(LOOP)

# The Python examples (examples/python/*.py), each run with the venv's python.
demo-python: python
	@for e in $(sort $(wildcard examples/python/*.py)); do echo "== $$e"; $(VENV_PY) $$e || exit 1; done

# rtpy against the standard library's executors and asyncio (not a test).
# Then the asyncio echo/scheduling benchmark, rtpy's loop against asyncio's,
# uvloop and rloop (PyPI wheels installed into the venv here), and the
# idle-loop timer lateness of each loop.
bench-python: python
	PYTHON=$(VENV_PY) bash benches/python/run.sh
	$(VENV_PY) -m pip install -q --disable-pip-version-check -r benches/python/echo/requirements.txt
	$(VENV_PY) benches/python/echo/run.py $(if $(RT_BENCH_QUICK),--quick,)
	$(VENV_PY) benches/python/timer_lateness.py $(if $(RT_BENCH_QUICK),--n 200 --rounds 2,)

# The echo servers' instructions, system calls and page faults per request
# (valgrind's callgrind and perf stat, installed here if missing).
bench-counts: python
	@command -v valgrind >/dev/null && command -v perf >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq valgrind linux-perf; }
	$(VENV_PY) -m pip install -q --disable-pip-version-check -r benches/python/echo/requirements.txt
	$(VENV_PY) benches/python/echo/counts.py $(if $(RT_BENCH_QUICK),--sizes 1024 --requests 200,)

clean:
	$(CARGO) clean
