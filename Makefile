# pgpush — one plain GNU Makefile. Out-of-tree objects in build/.
#
#   make              build build/pgpushd (and the test programs' deps)
#   make SANITIZE=1   the same with ASan + UBSan (rebuilds everything)
#   make deps         install the Debian packages the build and tests need
#   make test         C unit tests, SQL tests and integration tests (prove)
#   make install      PREFIX=/usr/local, DESTDIR: pgpushd, migrations, admin
#                     scripts, pgpushd(8), pgpushd.service
#   make demo         pgpush end to end on a local Postgres and the fake FCM
#   make bench        dispatcher throughput and latency, one JSON line
#   make valgrind     the C unit tests under valgrind
#   make fuzz         libFuzzer on the senders' builders and classifiers
#   make clean

CC      ?= cc
BUILD   := build
PKGS    := libuv libcurl libpq openssl json-c libnghttp2

# Every Debian package the build, the tests, the fakes and the tools need
# (Debian 12 and 13: no versioned names; pgtap brings the extension for
# the distribution's PostgreSQL and pg_prove's handler).
DEB_PACKAGES := make build-essential pkg-config libpq-dev \
	libcurl4-openssl-dev libssl-dev libjson-c-dev libuv1-dev \
	libnghttp2-dev nghttp2-client postgresql pgtap \
	libtap-parser-sourcehandler-pgtap-perl perl curl openssl procps bc \
	iproute2 \
	valgrind clang

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
	-Idispatcher $(PKG_CFLAGS) -MMD -MP
LDLIBS  += $(PKG_LIBS) -lm -lpthread

ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

# Objects depend on the flags: switching SANITIZE on or off rebuilds all.
FLAGS_FILE := $(BUILD)/.flags
FLAGS_NOW  := $(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)
$(shell mkdir -p $(BUILD); \
	[ "$$(cat $(FLAGS_FILE) 2>/dev/null)" = '$(FLAGS_NOW)' ] || \
	echo '$(FLAGS_NOW)' > $(FLAGS_FILE))

.DEFAULT_GOAL := all

# Where `make install` puts things (DESTDIR prefixes them all).
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
DATADIR    ?= $(PREFIX)/share/pgpush
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
DESTDIR    ?=

# pgpushd migrate's compile-time default (dispatcher/db/migrate.h); only the
# objects that use it are rebuilt when it changes.
PATHS_FILE := $(BUILD)/.paths
PATHS_NOW  := -DPGPUSH_MIGRATIONS_INSTALLED='"$(DATADIR)/migrations"'
$(shell mkdir -p $(BUILD); \
	[ "$$(cat $(PATHS_FILE) 2>/dev/null)" = '$(PATHS_NOW)' ] || \
	echo '$(PATHS_NOW)' > $(PATHS_FILE))
$(BUILD)/dispatcher/db/migrate.o $(BUILD)/dispatcher/cli.o: CFLAGS += $(PATHS_NOW)
$(BUILD)/dispatcher/db/migrate.o $(BUILD)/dispatcher/cli.o: $(PATHS_FILE)

LIB_SRCS  := $(filter-out dispatcher/main.c,$(sort $(shell find dispatcher -name '*.c')))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libpgpush.a
DAEMON    := $(BUILD)/pgpushd

UNIT_SRCS := $(sort $(shell find tests/unit -name 'test_*.c'))
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
UNIT_COMMON := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
$(BUILD)/tests/unit/%.o: CFLAGS += -Itests/unit
UNIT_COMMON_OBJS := $(UNIT_COMMON:%.c=$(BUILD)/%.o)

# Test drivers: programs a bash scenario in tests/integration runs against
# a fake provider or the database (never run on their own by prove).
DRIVER_SRCS := $(wildcard tests/drivers/*.c)
DRIVER_BINS := $(DRIVER_SRCS:%.c=$(BUILD)/%)
$(BUILD)/tests/drivers/%.o: CFLAGS += -Itests/unit

.PHONY: all deps test valgrind clean
.SECONDARY:
all: $(DAEMON)

$(BUILD)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(DAEMON): $(BUILD)/dispatcher/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BINS): %: %.o $(UNIT_COMMON_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/drivers/%: $(BUILD)/tests/drivers/%.o $(UNIT_COMMON_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The fake provider servers (tests/fakes) bring their own rules.
-include tests/fakes/fakes.mk

deps:
	@tests/harness/deps.sh $(DEB_PACKAGES)

# install.t runs `make install` with the same SANITIZE as the suite.
test: all $(UNIT_BINS) $(DRIVER_BINS) $(FAKES_BINS)
	@PGPUSH_MAKE_VARS="SANITIZE=$(SANITIZE)" tests/harness/run.sh

# The manual page from --help (the same tables), the unit with its paths.
$(BUILD)/pgpushd.8: $(DAEMON) packaging/help2man.sh
	packaging/help2man.sh $(DAEMON) $(DATADIR) $(SYSCONFDIR) >$@.tmp
	mv $@.tmp $@

$(BUILD)/pgpushd.service: packaging/pgpushd.service.in $(PATHS_FILE)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  $< >$@

# Like a Debian daemon: the binary, its migrations, the admin scripts, the
# manual page, the systemd unit and (never overwritten) its environment
# file.  No account is created here (docs/operations.md says how).
.PHONY: install uninstall
install: $(DAEMON) $(BUILD)/pgpushd.8 $(BUILD)/pgpushd.service
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR)/migrations \
	  $(DESTDIR)$(DATADIR)/admin-sql $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	install -m 755 $(DAEMON) $(DESTDIR)$(SBINDIR)/pgpushd
	install -m 644 migrations/*.sql $(DESTDIR)$(DATADIR)/migrations/
	install -m 644 admin-sql/*.sql $(DESTDIR)$(DATADIR)/admin-sql/
	install -m 644 $(BUILD)/pgpushd.8 $(DESTDIR)$(MANDIR)/man8/pgpushd.8
	install -m 644 $(BUILD)/pgpushd.service \
	  $(DESTDIR)$(UNITDIR)/pgpushd.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/pgpushd ] || \
	  install -m 644 packaging/pgpushd.default \
	    $(DESTDIR)$(SYSCONFDIR)/default/pgpushd

# Removes what install put there, except the environment file (settings).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/pgpushd \
	  $(DESTDIR)$(MANDIR)/man8/pgpushd.8 \
	  $(DESTDIR)$(UNITDIR)/pgpushd.service
	rm -rf $(DESTDIR)$(DATADIR)

# pgpush end to end on a local Postgres and the fake FCM.
.PHONY: demo bench
demo: all fakes
	@tests/tools/demo.sh

# Throughput vs. the raw SQL ceiling; one JSON line (BENCH_N, BENCH_MODE).
bench: all fakes
	@tests/tools/bench.sh

# libFuzzer targets for the senders' builders and classifiers
# (tests/fuzz/targets.c), built with clang + ASan/UBSan in build/fuzz/ and
# run FUZZ_SECONDS each over tests/fuzz/corpus/<target>/ (seeds and every
# crash kept as a regression input).  New inputs go to build/fuzz/corpus/.
FUZZ_SECONDS ?= 20
FUZZ_TARGETS := fcm_body fcm_classify apns_body apns_classify \
	wns_body wns_classify mpns_body mpns_classify
FUZZ_CC      := clang
FUZZ_FLAGS   := -g -O1 -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Idispatcher \
	$(PKG_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/fuzz/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/dispatcher/%.o: dispatcher/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/fuzz/%: tests/fuzz/targets.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer \
	  -DFUZZ_$(shell echo $* | tr a-z A-Z) -o $@ $^ $(PKG_LIBS) -lm -lpthread

.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	    -print_final_stats=0 -artifact_prefix=$(BUILD)/fuzz/crash-$$t- \
	    $(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    >$(BUILD)/fuzz/$$t.log 2>&1 || \
	  { tail -n 40 $(BUILD)/fuzz/$$t.log; \
	    echo "fuzz: $$t crashed; the input is in $(BUILD)/fuzz/crash-$$t-*" \
	         "(add it to tests/fuzz/corpus/$$t/ with the fix)"; exit 1; }; \
	  grep -E '^Done [0-9]+ runs' $(BUILD)/fuzz/$$t.log | sed 's/^/fuzz:   /'; \
	done

# Each unit test under valgrind; quiet unless something is wrong.
valgrind: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do \
	  valgrind -q --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite,indirect $$t >$$t.vg.log 2>&1 || \
	    { cat $$t.vg.log; echo "valgrind: $$t failed"; exit 1; }; \
	  echo "valgrind: $$t clean"; \
	done

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
