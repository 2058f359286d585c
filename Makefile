# stylenet build.  `make` -> build/stylenet, build/libstylenet.a and the shared library
# build/libstylenet.so.X.Y.Z (the API of include/stylenet.h); `make test` runs every test;
# `make install` (PREFIX, DESTDIR) installs the program, the shared library, its header and stylenet.pc.
# Sources are discovered: every src/**/*.c goes into the library (src/cli/ into the CLI),
# every tests/**/test_*.c becomes one test binary linked with tests/common/*.c.
CC        ?= gcc
BUILD     ?= build
PY        ?= /usr/bin/python3
# Built where it runs: -march=native lets the compiler use AVX-512 (or NEON/SVE) for our own loops;
# -ffp-contract=fast lets it fuse a*b+c into FMA (ISO C mode would forbid it).
# -Wno-format-truncation: messages are cut to their buffers on purpose (gcc -O3 flags every snprintf).
# -fPIC -fvisibility=hidden: one set of objects serves the static and the shared library.  The
# executables are position-independent already (Debian's gcc and clang build PIE by default), and
# with hidden symbols the calls inside the library stay direct: against -fPIE, only thread-local
# and extern data are reached another way (sn_error's buffer; tables in data/loader.c and
# report/), no kernel, net or model code changes.  Only what include/stylenet.h marks STYLENET_API
# is exported from libstylenet.so.
ARCH      ?= -march=native
OPT       ?= -O3
SANITIZE  ?=
CFLAGS    += -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH) -ffp-contract=fast -g -fopenmp -Wall -Wextra -Werror -Isrc -Iinclude -I$(BUILD)/gen \
             -fPIC -fvisibility=hidden $(SANITIZE)
CFLAGS    += $(shell pkg-config --cflags libcjson libpng libwebp cairo libmicrohttpd libzip 2>/dev/null)
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),clang)
CFLAGS    += -Wno-format-truncation
endif
# Open MPI (Debian's libopenmpi-dev), when installed: data-parallel training over MPI ranks
# (src/dist/, -DSN_MPI); without it src/dist/dist_none.c makes every run one process.  MPI=0
# builds without it even where it is installed.
MPI       ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
CFLAGS    += -DSN_MPI $(shell pkg-config --cflags ompi-c)
LDLIBS    += $(shell pkg-config --libs ompi-c)
endif
LDLIBS    += -ldnnl -lcjson -lpng -ljpeg -lwebpdemux -lwebp -lcairo -lmicrohttpd -lzip -lprotobuf-c -lm -fopenmp $(SANITIZE)

LIB_SRC   := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort)
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
TEST_SRC  := $(shell find tests -name 'test_*.c' | sort)
TCOM_SRC  := $(sort $(wildcard tests/common/*.c))
# ONNX export writes ONNX's own schema (Debian's libonnx-dev: /usr/include/onnx/onnx.proto) through
# C code that protobuf-c's compiler generates from it into $(BUILD)/gen at build time
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
GEN_SRC   := $(BUILD)/gen/onnx.pb-c.c
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(GEN_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TCOM_OBJ  := $(TCOM_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB       := $(BUILD)/libstylenet.a
# the version is the header's (STYLENET_VERSION_STRING); the soname carries the major number
VERSION   := $(shell sed -n 's/^\#define STYLENET_VERSION_STRING "\(.*\)"/\1/p' include/stylenet.h)
SONAME    := libstylenet.so.$(firstword $(subst ., ,$(VERSION)))
SO        := $(BUILD)/libstylenet.so.$(VERSION)

.PHONY: all test check-asan bench bench-quick bench-soak bench-peers bench-serve fixtures clean install install-built uninstall FORCE
all: $(BUILD)/stylenet $(LIB) $(SO)

# objects depend on the compiler and flags too: changing either rebuilds everything
$(BUILD)/.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS)' > $@
FORCE:

$(BUILD)/obj/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen --proto_path=$(dir $(ONNX_PROTO)) $(notdir $(ONNX_PROTO))
# the sources that include the generated header wait for it
$(LIB_OBJ) $(CLI_OBJ): | $(BUILD)/gen/onnx.pb-c.h

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/stylenet: $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# -z defs: every symbol the library uses is resolved by the libraries it names
$(SO): $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TCOM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

tests-build: $(TEST_BIN) $(BUILD)/stylenet $(SO)

# `make install`: the program, the shared library (libstylenet.so -> .so.MAJOR -> .so.X.Y.Z), the
# public header and stylenet.pc under $(DESTDIR)$(PREFIX).  install-built copies what is built
# without building (tests/api/test_install uses it on the tree the tests run from).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
install: all
	$(MAKE) --no-print-directory install-built
install-built:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 755 $(BUILD)/stylenet $(DESTDIR)$(BINDIR)/stylenet
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/libstylenet.so.$(VERSION)
	ln -sf libstylenet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libstylenet.so
	install -m 644 include/stylenet.h $(DESTDIR)$(INCLUDEDIR)/stylenet.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	  src/api/stylenet.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/stylenet.pc
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/stylenet $(DESTDIR)$(LIBDIR)/libstylenet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libstylenet.so $(DESTDIR)$(INCLUDEDIR)/stylenet.h $(DESTDIR)$(LIBDIR)/pkgconfig/stylenet.pc

# Python environment for the oracle: Debian's python3 (torch, torchvision, numpy) plus the
# official safetensors and tflite readers from PyPI, in a venv that sees the system packages;
# ok-effnet adds the reference EfficientNet-Lite (pure Python; --no-deps: it needs only torch,
# which Debian's python3-torch provides).
VENV      := build/venv
FIXTURES  := build/fixtures
$(VENV)/ok:
	$(PY) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install -q safetensors==0.8.0 flatbuffers==25.12.19 tflite==2.18.0
	touch $@
$(VENV)/ok-effnet: $(VENV)/ok
	$(VENV)/bin/pip install -q --no-deps efficientnet-lite-pytorch==0.1.0
	touch $@
# ok-onnx: the ONNX checker and ONNX Runtime, to load what `stylenet export --onnx` writes
$(VENV)/ok-onnx: $(VENV)/ok
	$(VENV)/bin/pip install -q onnx==1.17.0 onnxruntime==1.20.1 protobuf==7.36.2
	touch $@

# PyTorch writes the reference data the tests compare against (build/fixtures/).
fixtures: $(VENV)/ok $(VENV)/ok-effnet $(VENV)/ok-onnx
	$(VENV)/bin/python tools/make_fixtures.py $(FIXTURES)

test: tests-build fixtures
	STYLENET_FIXTURES=$(FIXTURES) STYLENET_PY=$(VENV)/bin/python STYLENET_BIN=$(BUILD)/stylenet tests/run.sh $(TEST_BIN)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
check-asan:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	$(MAKE) BUILD=build-asan OPT=-O1 SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

# side-by-side benchmark against Debian's PyTorch (bench/run.py): `make bench` is the full run and
# writes bench/RESULTS-debian-torch.md; `make bench-quick` is the reduced one, printing `ratio NAME = X` lines.  PyTorch's
# side runs in the test venv (its EfficientNet-Lite rows need efficientnet-lite-pytorch).
bench: all $(VENV)/ok-effnet
	$(MAKE) -C bench PY=$(CURDIR)/$(VENV)/bin/python

bench-quick: all $(VENV)/ok-effnet
	$(MAKE) -C bench quick PY=$(CURDIR)/$(VENV)/bin/python

# `stylenet serve` under a 10-minute mixed soak (tests/faults/test_serve_soak at full length)
bench-soak: $(BUILD)/stylenet $(BUILD)/tests/faults/test_serve_soak
	$(MAKE) -C bench soak BUILD=$(BUILD)

# against today's PyPI tools (PyTorch 2.x eager and torch.compile, ONNX Runtime, OpenVINO, LiteRT), in
# their own venv build/venv-peers (bench/requirements-peers.txt): writes bench/RESULTS.md; and wrk
# against `stylenet serve` next to the served model's raw latency (adds its table to RESULTS.md)
bench-peers: all
	$(MAKE) -C bench peers

bench-serve: all
	$(MAKE) -C bench serve-load

clean:
	rm -rf build build-asan $(FUZZ_BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- fuzzing of the readers (libFuzzer, clang): `make fuzz-build`, then `make fuzz FUZZ_SECONDS=300`
#      runs each harness tests/fuzz/fuzz_<name>.c from its seed corpus tests/fuzz/corpus/<name>/ (new
#      inputs go to build-fuzz/corpus-<name>/; crashers to build-fuzz/<name>-crash-*; a crash, a
#      failed check, an input slower than FUZZ_TIMEOUT s or over 1 GB fails the run).  The harnesses
#      link the whole library, built in FUZZ_BUILD by clang with libFuzzer's coverage hooks and
#      ASan + UBSan, so a new source file or harness needs nothing here.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 20
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Isrc $(FUZZ_SAN) \
                $(shell pkg-config --cflags libcjson libpng 2>/dev/null)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
.PHONY: fuzz fuzz-build
# the library first (its own make, as for check-asan; at -O1 clang does not vectorize, so the
# `omp simd` loops' "loop not vectorized" warnings are off), then the harnesses against it
fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT="-O1 -Wno-pass-failed" SANITIZE="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	  $(FUZZ_BUILD)/libstylenet.a
	$(MAKE) $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libstylenet.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP $< $(FUZZ_BUILD)/libstylenet.a -o $@ $(LDLIBS)
fuzz: fuzz-build
	for n in $(FUZZ_NAMES); do mkdir -p $(FUZZ_BUILD)/corpus-$$n && \
	  $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=1024 \
	    -artifact_prefix=$(FUZZ_BUILD)/$$n- $$(test -f tests/fuzz/$$n.dict && echo -dict=tests/fuzz/$$n.dict) \
	    $(FUZZ_BUILD)/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done
-include $(wildcard $(FUZZ_BUILD)/fuzz_*.d)
