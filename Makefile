# stylenet build.  `make` -> build/stylenet and build/libstylenet.a; `make test` runs every test.
# Sources are discovered: every src/**/*.c goes into the library (src/cli/ into the CLI),
# every tests/**/test_*.c becomes one test binary linked with tests/common/*.c.
CC        ?= gcc
BUILD     ?= build
PY        ?= /usr/bin/python3
# Built where it runs: -march=native lets the compiler use AVX-512 (or NEON/SVE) for our own loops.
ARCH      ?= -march=native
OPT       ?= -O3
SANITIZE  ?=
CFLAGS    += -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH) -g -fopenmp -Wall -Wextra -Werror -Isrc $(SANITIZE)
CFLAGS    += $(shell pkg-config --cflags libcjson libpng 2>/dev/null)
LDLIBS    += -ldnnl -lcjson -lpng -lm -fopenmp $(SANITIZE)

LIB_SRC   := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort)
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
TEST_SRC  := $(shell find tests -name 'test_*.c' | sort)
TCOM_SRC  := $(sort $(wildcard tests/common/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TCOM_OBJ  := $(TCOM_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB       := $(BUILD)/libstylenet.a

.PHONY: all test check-asan bench fixtures clean
all: $(BUILD)/stylenet $(LIB)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/stylenet: $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TCOM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

tests-build: $(TEST_BIN) $(BUILD)/stylenet

# Python environment for the oracle: Debian's python3 (torch, torchvision, numpy) plus the
# official safetensors and tflite readers from PyPI, in a venv that sees the system packages.
VENV      := build/venv
FIXTURES  := build/fixtures
$(VENV)/ok:
	$(PY) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install -q safetensors==0.8.0 flatbuffers==25.12.19 tflite==2.18.0
	touch $@

# PyTorch writes the reference data the tests compare against (build/fixtures/).
fixtures: $(VENV)/ok
	$(VENV)/bin/python tools/make_fixtures.py $(FIXTURES)

test: tests-build fixtures
	STYLENET_FIXTURES=$(FIXTURES) STYLENET_PY=$(VENV)/bin/python tests/run.sh $(TEST_BIN)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
check-asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

bench: all
	$(MAKE) -C bench

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
