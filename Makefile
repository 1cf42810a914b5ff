# cfgnet - build, demo and tests.
#
#   make                 build libcfgnet.a and ./net
#   make demo            install what is missing, prepare Fashion-MNIST, train, validate, predict
#   make test            install what is missing, build, run every suite (SUITE=name runs one)
#   make SANITIZE=address|undefined|thread test    the suite under a sanitizer (separate build dir)
#   make OPENMP=0        build without OpenMP
#   make WERROR=1        warnings are errors (CI)

CC       ?= gcc
OPENMP   ?= 1
SANITIZE ?=
WERROR   ?= 0

STB_CFLAGS := -I/usr/include/stb
STB_LIBS   := -lstb

WARN   := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
CFLAGS := -std=c11 -O3 -g -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(WARN) -Isrc -Iinclude -Itest/harness \
          $(STB_CFLAGS) -fno-strict-aliasing
LDLIBS := $(STB_LIBS) -lm -lpthread

ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(OPENMP),1)
CFLAGS += -fopenmp
LDFLAGS += -fopenmp
else
CFLAGS += -Wno-unknown-pragmas
endif

BUILD := build/default
ifneq ($(SANITIZE),)
BUILD := build/$(SANITIZE)
CFLAGS := $(filter-out -O3,$(CFLAGS)) -O1 -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
ifeq ($(SANITIZE),undefined)
CFLAGS += -fno-sanitize-recover=all
LDFLAGS += -fno-sanitize-recover=all
endif
endif
ifeq ($(OPENMP),0)
BUILD := $(BUILD)-noomp
endif

LIB_SRC  := $(sort $(wildcard src/core/*.c src/cfg/*.c src/kernels/*.c src/layers/*.c src/api/*.c \
                               src/net/*.c src/data/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard test/test_*.c))
TLIB_SRC := $(sort $(wildcard test/harness/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TLIB_OBJ := $(TLIB_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:test/%.c=$(BUILD)/test/%)
LIB      := $(BUILD)/libcfgnet.a
NET      := $(BUILD)/net

# Debian packages each job needs (the README's set-up is `make demo` and `make test`).
DEMO_PKGS := libstb-dev dataset-fashion-mnist
TEST_PKGS := $(DEMO_PKGS) libcmocka-dev
BENCH_PKGS := $(DEMO_PKGS) darknet python3-torch python3-numpy

.PHONY: all demo test deps-demo deps-test deps-bench clean lint format bench fashion
.SUFFIXES:

all: net

ifeq ($(SANITIZE)$(filter-out 1,$(OPENMP)),)
net: $(NET)
	cp $(NET) $@
else
net: $(NET)
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(NET): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/test/%: $(BUILD)/test/%.o $(TLIB_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TLIB_OBJ) $(LIB) $(LDLIBS) -lcmocka

-include $(shell find build -name '*.d' 2>/dev/null)

# Installs the listed Debian packages that are missing, saying so first.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing (apt-get)"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$missing; \
	fi
endef

deps-demo:
	$(call install_missing,$(DEMO_PKGS))
deps-test:
	$(call install_missing,$(TEST_PKGS))
deps-bench:
	$(call install_missing,$(BENCH_PKGS))

FASHION_SRC ?= /usr/share/datasets/fashion-mnist
data/fashion/train.list: | net
	./net prepare fashion-mnist $(FASHION_SRC) data/fashion

fashion: deps-demo net data/fashion/train.list

# The main job: train LeNet-5 on Fashion-MNIST, validate on the test set, predict one image.
demo: deps-demo
	$(MAKE) --no-print-directory net
	$(MAKE) --no-print-directory data/fashion/train.list
	./net classifier train data/fashion.data cfg/lenet5.cfg -clear
	./net classifier valid data/fashion.data cfg/lenet5.cfg backup/lenet5.weights
	./net classifier predict data/fashion.data cfg/lenet5.cfg backup/lenet5.weights data/fashion/test/00000_boot.png

test: deps-test
	$(MAKE) --no-print-directory $(NET) $(TESTS)
	test/run.sh $(BUILD) $(SUITE)

bench: deps-bench net
	bench/lenet5_train.sh

lint:
	test/lint.sh

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(TEST_SRC) $(TLIB_SRC) $(wildcard src/*/*.h test/harness/*.h include/*.h)

clean:
	rm -rf build net

# libFuzzer targets (clang): the cfg reader and net builder. FUZZ_SECONDS bounds a run.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -std=c11 -g -O1 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Isrc -Iinclude \
              $(STB_CFLAGS) -fsanitize=fuzzer,address,undefined
build/fuzz/fuzz_cfg: test/fuzz/fuzz_cfg.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)
fuzz-cfg: build/fuzz/fuzz_cfg
	@mkdir -p build/fuzz/corpus-cfg
	cp cfg/*.cfg build/fuzz/corpus-cfg/
	build/fuzz/fuzz_cfg -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 build/fuzz/corpus-cfg
.PHONY: fuzz-cfg
