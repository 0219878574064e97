# batlab: build, test and install.
#
#   make                 build ./batlab and build/libbatlab.a
#   make check           build and run every test (TAP, under prove)
#   make check SANITIZE=1  the same with ASan + UBSan (objects in build/san)
#   make bench           performance figures (bench_lab.lua: the PostgreSQL and
#                        MQTT sinks against private servers)
#   make fuzz / check-fuzz  libFuzzer targets (clang)
#   make check-report    reports of virtual runs rendered by headless chromium
#                        (installed when missing): every plot drawn, PNG, PDF
#   make report-screenshot  docs/report.png, the screenshot docs/results.md shows
#   make check-resume    kill -9 and resume over ptys, in real time (~40 s)
#   make check-faults    the full fault matrix (docs/reliability.md); its table
#                        in build/rel/fault-matrix.txt
#   make install PREFIX=/usr/local
#   make install-udev    the udev rule for the Batlab (04D8:000A) into UDEVDIR;
#                        `make install UDEV=1` installs it too
#
# Every target that compiles first runs `make deps`, which installs the
# Debian packages that are missing (and does nothing when none are). Flags
# come from pkg-config, so they are only computed after deps has run: the
# public targets call make again for the real work.

PREFIX  ?= /usr/local
DESTDIR ?=
# udev reads rules from /usr/lib/udev/rules.d (the distribution's) and
# /etc/udev/rules.d (the administrator's), never from /usr/local: a
# PREFIX=/usr package puts the rule with the distribution's, any other
# install where the administrator's go.
UDEVDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/udev/rules.d,/etc/udev/rules.d)
UDEV    ?=
CC      ?= cc
PKGS     = lua5.4 libserialport readline libcurl libpq libmosquitto zlib libcrypto libssl
VERSION  = 0.1.0

ifeq ($(SANITIZE),1)
BUILD    = build/san
OPT      = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD    = build/rel
OPT      = -O2
endif

CFLAGS  ?= -g
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	$(OPT) $(CFLAGS) -Isrc -DBL_VERSION='"$(VERSION)"' \
	-DBL_LUADIR='"$(PREFIX)/share/batlab/lua"' \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_LDFLAGS = $(OPT) $(LDFLAGS)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

LAYERS   = core link device host lua sim
LIB_SRC  = $(sort $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c)))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      = $(BUILD)/libbatlab.a
BIN      = $(BUILD)/batlab

TEST_SRC = $(sort $(wildcard tests/c/test_*.c))
TEST_BIN = $(TEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
TEST_SUPPORT = $(wildcard tests/c/support/*.c)
BENCH_SRC = $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN = $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps build check _check check-resume check-report _check-report report-screenshot check-faults _check-faults bench _bench fuzz check-fuzz _fuzz clean install install-udev run

all: deps
	@$(MAKE) --no-print-directory build

deps:
	@sh tools/deps.sh

build: $(BIN) $(LIB)
ifneq ($(SANITIZE),1)
	@ln -sf $(BIN) batlab
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

CLI_SRC  = $(sort $(wildcard src/cli/*.c))
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/c/%.c $(TEST_SUPPORT) $(LIB) tests/c/tap.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/c -o $@ $< $(TEST_SUPPORT) $(LIB) $(LIBS)

$(BUILD)/bench/%: tests/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/c -o $@ $< $(LIB) $(LIBS)

check: deps
	@$(MAKE) --no-print-directory _check

# Lua tests run inside the batlab binary (`batlab lua FILE`), so they see
# the real bindings; a tiny wrapper per file lets one prove run take both.
LUA_TEST_SRC = $(sort $(wildcard tests/lua/test_*.lua))
LUA_TEST_BIN = $(LUA_TEST_SRC:tests/lua/%.lua=$(BUILD)/tests/lua_%)

$(BUILD)/tests/lua_%: tests/lua/%.lua
	@mkdir -p $(dir $@)
	@printf '#!/bin/sh\ncd "%s" && exec "%s" lua "%s" "$$@"\n' "$(CURDIR)" "$(CURDIR)/$(BIN)" "$<" > $@
	@chmod +x $@

_check: build $(TEST_BIN) $(LUA_TEST_BIN)
	@BATLAB=$(CURDIR)/$(BIN) BUILD=$(CURDIR)/$(BUILD) prove -f --exec '' $(TEST_BIN) $(LUA_TEST_BIN)

# kill -9 and resume, over ptys in real time (tests/lua/resume_kill.lua,
# about 40 s): its kills land at chosen journal entries whatever the
# machine's speed, but the runs go at 100 times real time, and a host kept
# off the CPU for a quarter of a second (a load of 8 or more on 2 cores)
# misses the device watchdog and fails its run; `make check`'s tests do
# not depend on how fast the machine is.
check-resume: build
	@BATLAB=$(CURDIR)/$(BIN) BUILD=$(CURDIR)/$(BUILD) prove -v -f --exec '$(CURDIR)/$(BIN) lua' tests/lua/resume_kill.lua

# The HTML report in a real browser (tests/report/): headless chromium
# renders the reports of virtual runs; tools/pngbox (a PNG reader on zlib)
# tells a drawn plot from a blank one. About a minute.
check-report: deps
	@$(MAKE) --no-print-directory _check-report

$(BUILD)/tools/pngbox: tools/pngbox.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) $(shell pkg-config --libs zlib 2>/dev/null)

_check-report: build $(BUILD)/tools/pngbox
	@sh tests/report/check-report.sh $(CURDIR)/$(BIN) $(CURDIR)/$(BUILD)

# docs/report.png: the top of the custom procedure's report, as rendered
# by check-report; commit it when the report's look changes.
report-screenshot: deps
	@$(MAKE) --no-print-directory build $(BUILD)/tools/pngbox
	@sh tests/report/check-report.sh $(CURDIR)/$(BIN) $(CURDIR)/$(BUILD) $(CURDIR)/docs/report.png

# Every simulator fault kind at three points of a short cycle test (36
# runs, about 35 s on 2 cores; `make check` runs them too): verbose, with
# the table in $(BUILD)/fault-matrix.txt.
check-faults: deps
	@$(MAKE) --no-print-directory _check-faults

_check-faults: build $(BUILD)/tests/lua_test_fault_matrix
	@BATLAB=$(CURDIR)/$(BIN) BUILD=$(CURDIR)/$(BUILD) \
		FAULT_TABLE=$(CURDIR)/$(BUILD)/fault-matrix.txt prove -v -f --exec '' $(BUILD)/tests/lua_test_fault_matrix
	@echo "table: $(BUILD)/fault-matrix.txt"

bench: deps
	@$(MAKE) --no-print-directory _bench

# The baseline the speed figures compare with: a build of BASELINE (a
# commit; default the one before the speed-ups of issue 14) from git
# archive in build/baseline, measured in the same run as this build.
# BASELINE= (empty) measures without it. The table goes to standard
# output and build/rel/bench.md, the benches' detail to build/rel/bench.log.
BASELINE ?= 5147d23
BASELINE_DIR = build/baseline/$(BASELINE)

_bench: build $(BENCH_BIN) $(if $(BASELINE),$(BASELINE_DIR)/batlab)
	@rm -f $(BUILD)/bench.log
	@for b in $(BENCH_BIN); do \
		echo "== $$b" >> $(BUILD)/bench.log; \
		BATLAB=$(CURDIR)/$(BIN) BATLAB_BASELINE=$(if $(BASELINE),$(CURDIR)/$(BASELINE_DIR)/batlab) \
			$$b >> $(BUILD)/bench.log 2>&1 || { cat $(BUILD)/bench.log; exit 1; }; \
	done
	@echo "== bench_lab" >> $(BUILD)/bench.log; BATLAB=$(CURDIR)/$(BIN) $(BIN) lua tests/bench/bench_lab.lua \
		>> $(BUILD)/bench.log 2>&1 || { cat $(BUILD)/bench.log; exit 1; }
	@grep -v '^FIGURE' $(BUILD)/bench.log
	@echo
	@sh tests/bench/table.sh $(BUILD)/bench.log | tee $(BUILD)/bench.md

$(BASELINE_DIR)/batlab:
	@rm -rf $(BASELINE_DIR) && mkdir -p $(BASELINE_DIR)
	git archive $(BASELINE) | tar -x -C $(BASELINE_DIR)
	$(MAKE) --no-print-directory -C $(BASELINE_DIR) build

# libFuzzer targets need clang; they link the library sources directly so
# the fuzzer instruments them.
FUZZ_CC    = clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -std=c11 \
	-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
FUZZ_SRC   = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_RUNS ?= 10000000

fuzz: deps
	@$(MAKE) --no-print-directory _fuzz

_fuzz: $(FUZZ_BIN)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c src/core/proto.c src/core/proto.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< src/core/proto.c

check-fuzz: fuzz
	@for f in $(FUZZ_BIN); do \
		mkdir -p build/fuzz/corpus-$$(basename $$f); \
		echo "fuzz: $$f ($(FUZZ_RUNS) runs)"; \
		$$f -runs=$(FUZZ_RUNS) -max_total_time=1200 -print_final_stats=1 \
			build/fuzz/corpus-$$(basename $$f) 2>&1 | tail -n 12 || exit 1; \
	done

run: all
	./batlab cycletest --sim CELL_A CELL_B CELL_C CELL_D

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/batlab/lua \
		$(DESTDIR)$(PREFIX)/share/batlab/scripts $(DESTDIR)$(PREFIX)/share/doc/batlab \
		$(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/batlab
	cd lua && find . -name '*.lua' -exec install -D -m 644 {} $(DESTDIR)$(PREFIX)/share/batlab/lua/{} \;
	install -m 644 scripts/*.lua $(DESTDIR)$(PREFIX)/share/batlab/scripts/
	install -m 644 docs/batlab.1 $(DESTDIR)$(PREFIX)/share/man/man1/batlab.1
	install -m 644 tools/batlab-completion.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/batlab
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/batlab/
	cd docs && find . \( -name '*.md' -o -name '*.json' \) -exec install -D -m 644 {} $(DESTDIR)$(PREFIX)/share/doc/batlab/{} \;
ifeq ($(UDEV),1)
	@$(MAKE) --no-print-directory install-udev
endif

# Needs no build: only the rule file. udev picks a new rule up at the next
# plug-in once it reloaded its rules.
install-udev:
	install -d $(DESTDIR)$(UDEVDIR)
	install -m 644 tools/60-batlab.rules $(DESTDIR)$(UDEVDIR)/60-batlab.rules
	@echo "installed $(DESTDIR)$(UDEVDIR)/60-batlab.rules; to use it now:" \
		"sudo udevadm control --reload-rules && sudo udevadm trigger"

clean:
	rm -rf build batlab

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
