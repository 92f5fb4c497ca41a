# popgate — one plain Makefile.
#
#   make            release build of popgated and popgatectl (build/release/)
#   make test       sanitizer build, layer check, unit tests, fuzz smoke runs,
#                   integration tests against real Dovecot / real clients
#   make bench      benchmarks, side by side with Dovecot and fetchmail
#   make run        build and start a gateway on the default local config
#   make fuzz       libFuzzer targets (clang) in build/fuzz/
#
# The build is quiet (warnings and errors still show); V=1 shows every
# command.
#
# Every top-level target first runs deploy/install-deps.sh, which installs
# the Debian packages that are missing (or says how, when not root).
#
# Sources are found by wildcard: a new .c in a module folder is built into
# that module's archive; a new tests/unit/test_<area>_<name>.c becomes a Check
# suite linked only against the archives of its layer (area = lib, store,
# pop3, imap, gateway), which keeps the layering honest.

.DEFAULT_GOAL := all
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:

MODE ?= release
BUILD_ROOT ?= build
B := $(BUILD_ROOT)/$(MODE)

# The release number; the git revision is added to it at build time.
VERSION := 0.1.0
GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell \
	git diff --quiet HEAD -- 2>/dev/null || echo -dirty)

CC ?= cc
CLANG ?= clang
# Compilers run at once by make test's builds (one per core).
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON ?= python3

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := lmdb libevent libevent_openssl libevent_pthreads openssl jansson \
	inih libargon2 libcurl zlib
# Recursively expanded on purpose: pkg-config runs only once the packages
# are known to be installed (after the deps step), not when make parses this.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
# libunistring (user name case folding) has no pkg-config file
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) -lunistring
CHECK_LIBS = $(shell pkg-config --libs check)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Wpointer-arith -Wwrite-strings -Wundef \
	-Wno-unused-parameter -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN += -Werror
endif

ifeq ($(MODE),test)
OPT := -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
LDOPT := -fsanitize=address,undefined
else ifeq ($(MODE),tsan)
# ThreadSanitizer: the worker pool, the writer and whatever they share.
OPT := -O1 -fsanitize=thread -fno-omit-frame-pointer
LDOPT := -fsanitize=thread
else ifeq ($(MODE),fuzz)
CC := $(CLANG)
OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-DPOPGATE_FUZZING
LDOPT := -fsanitize=fuzzer,address,undefined
else
OPT := -O2
LDOPT :=
endif

CPPFLAGS := -D_GNU_SOURCE -I. -Ilib -MMD -MP
CFLAGS = -std=c11 -g -pthread $(OPT) $(WARN) $(PKG_CFLAGS)
# --as-needed: a binary links only the libraries it uses (libcurl and its
# dependencies load into popgated alone, not into every tool and test)
LDFLAGS = -pthread $(LDOPT) -Wl,--as-needed

# --- sources, by module -------------------------------------------------
LIB_SRCS := $(wildcard lib/*.c)
STORE_SRCS := $(wildcard store/*.c)
POP3_SRCS := $(wildcard pop3-upstream/*.c)
IMAP_SRCS := $(wildcard imap-frontend/*.c)
GW_MAINS := gateway/popgated.c gateway/popgatectl.c
GW_SRCS := $(filter-out $(GW_MAINS),$(wildcard gateway/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
TESTLIB_SRCS := $(wildcard tests/unit/lib/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)

# Level-1 files (pure logic): no libevent, OpenSSL or LMDB. Each module
# names its pure files here; `make layers` enforces it.
PURE_FILES := $(wildcard lib/log.[ch] lib/xmalloc.[ch] lib/strbuf.[ch] \
	lib/arena.[ch] lib/strnum.[ch] lib/utf8.[ch] lib/version.[ch] \
	lib/username.[ch] \
	store/mail-*.[ch] store/mime-*.[ch] \
	imap-frontend/imap-parse*.[ch] imap-frontend/imap-seqset.[ch] \
	imap-frontend/imap-format*.[ch] imap-frontend/imap-search-match*.[ch] \
	imap-frontend/imap-sort.[ch] imap-frontend/imap-proxy-parse.[ch] \
	imap-frontend/imap-utf7.[ch] imap-frontend/imap-trace.[ch] \
	pop3-upstream/pop3-parse*.[ch] \
	gateway/config.[ch] gateway/config-*.[ch] gateway/control-proto.[ch] \
	gateway/import-csv.[ch] gateway/oauth-proto.[ch] \
	gateway/auth-http-proto.[ch] gateway/move-format.[ch] \
	gateway/web-advice.[ch] gateway/web-session.[ch])

obj = $(patsubst %.c,$(B)/%.o,$(1))

LIB_A := $(B)/libpg_lib.a
STORE_A := $(B)/libpg_store.a
POP3_A := $(B)/libpg_pop3.a
IMAP_A := $(B)/libpg_imap.a
GW_A := $(B)/libpg_gateway.a
TESTLIB_A := $(B)/libpg_testlib.a

$(LIB_A): $(call obj,$(LIB_SRCS))
$(STORE_A): $(call obj,$(STORE_SRCS))
$(POP3_A): $(call obj,$(POP3_SRCS))
$(IMAP_A): $(call obj,$(IMAP_SRCS))
$(GW_A): $(call obj,$(GW_SRCS))
$(TESTLIB_A): $(call obj,$(TESTLIB_SRCS))

$(B)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# build-info.h changes only when the version or the revision does, so
# only lib/version.o is rebuilt for a new commit.
.PHONY: FORCE
FORCE:
$(B)/gen/build-info.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define POPGATE_VERSION "%s"\n#define POPGATE_GIT_REV "%s"\n' \
		'$(VERSION)' '$(GIT_REV)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(B)/lib/version.o: $(B)/gen/build-info.h
$(B)/lib/version.o: CPPFLAGS += -I$(B)/gen

# The web page's files are built into popgated (gateway/web-assets.c).
$(B)/gateway/web-assets.o: $(wildcard gateway/www/*)

# Archives a layer may link, highest first.
ARCH_lib := $(LIB_A)
ARCH_store := $(STORE_A) $(LIB_A)
ARCH_pop3 := $(POP3_A) $(STORE_A) $(LIB_A)
ARCH_imap := $(IMAP_A) $(STORE_A) $(LIB_A)
ARCH_gateway := $(GW_A) $(IMAP_A) $(POP3_A) $(STORE_A) $(LIB_A)

BINS := $(B)/popgated $(B)/popgatectl

$(B)/popgated: $(call obj,gateway/popgated.c) $(ARCH_gateway)
	$(Q)$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lm -o $@
$(B)/popgatectl: $(call obj,gateway/popgatectl.c) $(ARCH_gateway)
	$(Q)$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

# --- unit tests -----------------------------------------------------------
area = $(word 2,$(subst _, ,$(notdir $(1))))
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRCS))

.SECONDEXPANSION:
$(B)/tests/unit/test_%: $(B)/tests/unit/test_%.o $(TESTLIB_A) \
		$$(ARCH_$$(call area,$$@))
	$(Q)$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) $(PKG_LIBS) -lm -o $@

# Small helper programs the integration tests and benchmarks drive
# (a store writer to SIGKILL, generators ...); they may link anything.
TOOL_BINS := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRCS))
$(B)/tests/tools/%: $(B)/tests/tools/%.o $(TESTLIB_A) $(ARCH_gateway)
	$(Q)$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

# --- fuzz targets (MODE=fuzz, clang + libFuzzer) ---------------------------
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/tests/fuzz/%,$(FUZZ_SRCS))
$(B)/tests/fuzz/fuzz_%: $(B)/tests/fuzz/fuzz_%.o $$(ARCH_$$(call area,$$@))
	$(Q)$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

# --- top-level targets ------------------------------------------------------
.PHONY: all deps build-mode test test-build unit fuzz-smoke integration \
	layers bench run fuzz clean

deps:
	@sh deploy/install-deps.sh

all: deps
	@echo "popgate: building $(BUILD_ROOT)/release$(if $(filter 1,$(V)),, (make V=1 shows the commands))"
	@$(MAKE) --no-print-directory MODE=release build-mode

build-mode: $(BINS) $(TOOL_BINS) $(if $(filter test,$(MODE)),$(UNIT_BINS))

layers:
	@bad=$$(grep -lE '#[[:space:]]*include[[:space:]]*[<"](event2/|openssl/|lmdb\.h)' \
		$(PURE_FILES) /dev/null); \
	if [ -n "$$bad" ]; then \
		echo "layers: level-1 files include libevent/OpenSSL/LMDB: $$bad"; \
		exit 1; fi; \
	bad=$$(grep -lE '#[[:space:]]*include[[:space:]]*"(\.\./)?imap-frontend/' \
		pop3-upstream/*.[ch] store/*.[ch] lib/*.[ch] /dev/null; \
		grep -lE '#[[:space:]]*include[[:space:]]*"(\.\./)?pop3-upstream/' \
		imap-frontend/*.[ch] store/*.[ch] lib/*.[ch] /dev/null; \
		grep -lE '#[[:space:]]*include[[:space:]]*"(\.\./)?gateway/' \
		imap-frontend/*.[ch] pop3-upstream/*.[ch] store/*.[ch] \
		lib/*.[ch] /dev/null); \
	if [ -n "$$bad" ]; then \
		echo "layers: forbidden cross-module include in: $$bad"; \
		exit 1; fi; \
	echo "layers: ok ($(words $(PURE_FILES)) level-1 files checked)"

test: deps layers
	@echo "popgate: building $(BUILD_ROOT)/test, $(BUILD_ROOT)/fuzz and $(BUILD_ROOT)/tsan"
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) MODE=test build-mode
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) MODE=fuzz fuzz-build
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) MODE=tsan tsan-build
	@sh tests/run-tests.sh $(BUILD_ROOT)/test $(BUILD_ROOT)/fuzz $(BUILD_ROOT)/tsan

fuzz: deps
	@$(MAKE) --no-print-directory MODE=fuzz fuzz-build

.PHONY: fuzz-build tsan-build
fuzz-build: $(FUZZ_BINS)

# The ThreadSanitizer build: the daemon, the tools and the unit suites of
# what threads share (tests/run-tests.sh picks which to run there).
TSAN_UNITS := $(filter $(B)/tests/unit/test_lib_% $(B)/tests/unit/test_store_% \
	$(B)/tests/unit/test_pop3_% $(B)/tests/unit/test_imap_sortcache,$(UNIT_BINS))
tsan-build: $(BINS) $(TOOL_BINS) $(TSAN_UNITS)

bench: deps
	@$(MAKE) --no-print-directory MODE=release build-mode
	@sh tests/bench/run.sh build/release

run: all
	@sh deploy/run-local.sh $(BUILD_ROOT)/release

clean:
	rm -rf $(BUILD_ROOT)

-include $(shell find $(B) -name "*.d" 2>/dev/null)
