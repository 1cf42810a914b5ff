# cfgnet - build, demo and tests.
#
#   make                 build libcfgnet.a and ./net
#   make demo            install what is missing, prepare Fashion-MNIST, train, validate, predict
#   make test            install what is missing, build, run every suite (SUITE=name runs one)
#   make SANITIZE=address|undefined|thread test    the suite under a sanitizer (separate build dir)
#   make OPENMP=0        build without OpenMP
#   make WERROR=1        warnings are errors (CI)
#   make MPI=1           data-parallel training with Open MPI: mpicc, -DCFGNET_MPI, BUILD dir
#                        suffixed -mpi (docs/distributed.md); the default build has no MPI

CC       ?= gcc
OPENMP   ?= 1
SANITIZE ?=
WERROR   ?= 0
MPI      ?= 0
# parallel compile jobs of `make test` (its build step); test/run.sh runs the suites as many at a
# time as there are cores (CFGNET_TEST_JOBS)
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

# stb's headers (libstb-dev): src/data/stb_impl.c compiles the stb libraries we use from them
# at our flags (faster decoding than Debian's libstb, which nothing links); zlib (zlib1g-dev)
# inflates the common PNGs (src/data/png.c)
STB_CFLAGS := -I/usr/include/stb

WARN   := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
CFLAGS := -std=c11 -O3 -g -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(WARN) -Isrc -Iinclude -Itest/harness \
          $(STB_CFLAGS) -fno-strict-aliasing
LDLIBS := -lz -lm -lpthread

ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(MPI),1)
CC := mpicc
CFLAGS += -DCFGNET_MPI
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
ifneq ($(findstring undefined,$(SANITIZE)),)
CFLAGS += -fno-sanitize-recover=all
LDFLAGS += -fno-sanitize-recover=all
endif
endif
ifeq ($(OPENMP),0)
BUILD := $(BUILD)-noomp
endif
ifeq ($(MPI),1)
BUILD := $(BUILD)-mpi
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
DIST_LIB := $(BUILD)/dist/libcfgnet.a

# The shared library: the same sources compiled again, position-independent, in their own object
# directory, exporting only the cfgnet_* functions of include/cfgnet.h (the rest is hidden).
api_version = $(shell sed -n 's/^.define CFGNET_VERSION_$(1) \([0-9]*\).*/\1/p' include/cfgnet.h)
SO_MAJOR := $(call api_version,MAJOR)
VERSION  := $(SO_MAJOR).$(call api_version,MINOR).$(call api_version,PATCH)
SONAME   := libcfgnet.so.$(SO_MAJOR)
SO       := $(BUILD)/$(SONAME)
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)

# Debian packages each job needs (the README's set-up is `make demo` and `make test`).
DEMO_PKGS := libstb-dev zlib1g-dev dataset-fashion-mnist
# The reference suites (PyTorch, torchvision, Darknet parity) run in `make test`, so it installs them.
TEST_PKGS := $(DEMO_PKGS) libcmocka-dev pkgconf python3-numpy python3-pytest python3-pip \
             python3-torch python3-torchvision darknet graphviz openmpi-bin libopenmpi-dev
BENCH_PKGS := $(DEMO_PKGS) darknet python3-torch python3-torchvision python3-numpy time libopenblas-dev

.PHONY: all demo test deps-demo deps-test deps-bench clean lint format bench fashion lib install \
        uninstall
.SUFFIXES:

all: net lib

ifeq ($(SANITIZE)$(filter-out 1,$(OPENMP)),)
net: $(NET)
	cp $(NET) $@
else
net: $(NET)
endif

# The augmentation kernels' selects (clamps, hue sectors) vectorise only when a float comparison
# may run unconditionally; this changes no value (it is not fast-math: exceptions are not trapped).
$(BUILD)/src/data/augment.o $(BUILD)/pic/src/data/augment.o: CFLAGS += -fno-trapping-math
# stb's own undefined behaviour (e.g. stb_image_write's JPEG coder shifts bits out of an int) is
# not ours to fix: UBSan leaves the stb build out; ASan and TSan instrument it like our code.
ifneq ($(findstring undefined,$(SANITIZE)),)
$(BUILD)/src/data/stb_impl.o $(BUILD)/pic/src/data/stb_impl.o: CFLAGS += -fno-sanitize=undefined
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

lib: $(LIB) $(SO) $(BUILD)/libcfgnet.so $(DIST_LIB)

# The installed static library: the library's objects linked into one (ld -r), in which every
# global symbol but the cfgnet_* API is then made local, as the shared library's version script
# does; so a program linking it statically may define its own gemm_*, image_* or stbi_* functions
# (the build tree's $(LIB) keeps them global: the tests call the internals).
$(DIST_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -r -nostdlib -Wl,-d -o $(@D)/cfgnet.o $^
	objcopy --wildcard --keep-global-symbol='cfgnet_*' $(@D)/cfgnet.o
	@rm -f $@
	ar rcs $@ $(@D)/cfgnet.o

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(SO): $(PIC_OBJ) src/api/cfgnet.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/api/cfgnet.map \
	      -o $@ $(PIC_OBJ) $(LDLIBS)

$(BUILD)/libcfgnet.so: $(SO)
	ln -sf $(SONAME) $@

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

# The script suites (test/test_*.sh) re-enter make for install/uninstall with the same settings.
test: deps-test
	$(MAKE) --no-print-directory -j$(JOBS) $(NET) $(TESTS) lib
	CFGNET_MAKE_ARGS="BUILD=$(BUILD) OPENMP=$(OPENMP) SANITIZE=$(SANITIZE) MPI=$(MPI)" \
	CFGNET_SANITIZE="$(SANITIZE)" test/run.sh $(BUILD) $(SUITE)

# bench/run.sh: cfgnet vs PyTorch, darknet, OpenBLAS and the machine's limits (about 20 minutes);
# BENCH_ARGS=--quick tries it in a minute or two (bench/README.md).
bench: deps-bench net
	BUILD=$(BUILD) bench/run.sh $(BENCH_ARGS)

# cfgnet's gemm against OpenBLAS on square and conv-shaped matrices (bench/README.md);
# BENCH_GEMM_ARGS="-threads 1 -reps 3 -only vgg16" narrows it.
BENCH_GEMM := $(BUILD)/bench/bench_gemm
$(BENCH_GEMM): $(BUILD)/bench/gemm.o $(LIB) | deps-gemm
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lopenblas
bench-gemm: $(BENCH_GEMM)
	$(BENCH_GEMM) $(BENCH_GEMM_ARGS)
$(BUILD)/bench/gemm.o: | deps-gemm
deps-gemm:
	$(call install_missing,libopenblas-dev)
.PHONY: bench-gemm deps-gemm

# cppcheck over src/ and a syntax check of the scripts (test/lint.sh)
lint:
	$(call install_missing,cppcheck)
	test/lint.sh

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(TEST_SRC) $(TLIB_SRC) $(wildcard src/*/*.h test/harness/*.h include/*.h)

# make install PREFIX=/usr/local (the default) DESTDIR=(staging root): the libraries, the header,
# cfgnet.pc, the net command and its man page; `make uninstall` with the same PREFIX and DESTDIR
# removes exactly those files. ldconfig runs after a real (DESTDIR-less) install.
PREFIX     ?= /usr/local
DESTDIR    ?=
LDCONFIG   ?= ldconfig
BINDIR     := $(PREFIX)/bin
LIBDIR     := $(PREFIX)/lib
INCLUDEDIR := $(PREFIX)/include
PCDIR      := $(LIBDIR)/pkgconfig
MAN1DIR    := $(PREFIX)/share/man/man1
# the OpenMP runtime for static users: gcc's libgomp; clang's libomp is outside the linker's
# default path (Debian: /usr/lib/llvm-14/lib), so there -fopenmp, which lets the driver find it
OMP_LIB    := $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),-fopenmp,-lgomp)
PC_PRIVATE := -lz -lm -lpthread$(if $(filter 1,$(OPENMP)), $(OMP_LIB))
ifeq ($(MPI),1)
PC_PRIVATE += $(shell mpicc --showme:link)
endif
INSTALLED  := $(BINDIR)/net $(LIBDIR)/$(SONAME) $(LIBDIR)/libcfgnet.so $(LIBDIR)/libcfgnet.a \
              $(INCLUDEDIR)/cfgnet.h $(PCDIR)/cfgnet.pc $(MAN1DIR)/net.1

$(BUILD)/cfgnet.pc: src/api/cfgnet.pc.in include/cfgnet.h FORCE
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(PC_PRIVATE)|' $< > $@

install: $(NET) $(DIST_LIB) $(SO) $(BUILD)/cfgnet.pc
	install -d $(addprefix $(DESTDIR),$(BINDIR) $(LIBDIR) $(INCLUDEDIR) $(PCDIR) $(MAN1DIR))
	install -m 755 $(NET) $(DESTDIR)$(BINDIR)/net
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcfgnet.so
	install -m 644 $(DIST_LIB) $(DESTDIR)$(LIBDIR)/libcfgnet.a
	install -m 644 include/cfgnet.h $(DESTDIR)$(INCLUDEDIR)/cfgnet.h
	install -m 644 $(BUILD)/cfgnet.pc $(DESTDIR)$(PCDIR)/cfgnet.pc
	install -m 644 docs/net.1 $(DESTDIR)$(MAN1DIR)/net.1
	@if [ -z "$(DESTDIR)" ]; then $(LDCONFIG) || echo "($(LDCONFIG) failed: run it as root)"; fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@if [ -z "$(DESTDIR)" ]; then $(LDCONFIG) || true; fi

.PHONY: FORCE
FORCE:

clean:
	rm -rf build net examples/build

# libFuzzer targets (clang): cfg reading + net build, .weights/.state loading, image decoding,
# .data/label/list parsing. `make fuzz` runs each for FUZZ_SECONDS on a copy of its seed corpus
# (test/fuzz/corpus-NAME); any crash, leak, timeout or sanitizer report fails it.
FUZZ_SECONDS ?= 60
FUZZ_SEED ?= 1 # fixed, so that a CI finding can be replayed; FUZZ_SEED=0 lets libFuzzer choose
FUZZ_TARGETS := cfg weights image data
FUZZ_FLAGS := -std=c11 -g -O1 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Isrc -Iinclude \
              $(STB_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_RUN := -max_total_time=$(FUZZ_SECONDS) -seed=$(FUZZ_SEED) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
FUZZ_RUN += -artifact_prefix=build/fuzz/
deps-fuzz:
	$(call install_missing,clang)
# stb is the product's (src/data/stb_impl.c), instrumented like the rest
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
# stb_image computes NULL + 0 and memcpy(NULL, p, 0) on a PNG whose first IDAT chunk is empty
# (no-ops on every compiler, UB by the letter): the checks not applied to stb, so fuzzing goes on.
build/fuzz/obj/src/data/stb_impl.o: FUZZ_FLAGS += -fno-sanitize=pointer-overflow,nonnull-attribute
# clang 14 spends 4-5 minutes at -O1 with address+undefined on winograd.c's unrolled transforms
# (inlined twice, once per target ISA) and 1 s at -O0; the fuzzed nets are tiny, and the gcc
# ASan+UBSan suite runs the file optimised.
build/fuzz/obj/src/kernels/winograd.o: FUZZ_FLAGS += -O0
build/fuzz/obj/%.o: %.c | deps-fuzz
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -MMD -MP -c $< -o $@
build/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz_util.h $(FUZZ_OBJ) | deps-fuzz
	clang $(FUZZ_FLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)
.PRECIOUS: build/fuzz/fuzz_%
# objects made through the pattern rule are intermediate to make, which would delete them after a
# clean build and recompile all on the next `make fuzz`
.SECONDARY: $(FUZZ_OBJ)
# New inputs go to build/fuzz/corpus-NAME (kept between runs); the seeds are only read.
$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: build/fuzz/fuzz_%
	@mkdir -p build/fuzz/corpus-$*
	build/fuzz/fuzz_$* $(FUZZ_RUN) build/fuzz/corpus-$* test/fuzz/corpus-$*
fuzz: $(FUZZ_TARGETS:%=fuzz-%)
.PHONY: fuzz deps-fuzz $(FUZZ_TARGETS:%=fuzz-%)
