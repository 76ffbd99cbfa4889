# billing: PGXS build.  See README.md for the two commands that set up a
# fresh machine; the targets here assume the build dependencies exist.

EXTENSION   = billing
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" billing.control)
MODULE_big  = billing
PGFILEDESC  = "billing - recurring billing inside PostgreSQL"

# The pure core (no PostgreSQL headers) and the fmgr glue.
CORE_SRCS   = $(sort $(wildcard src/core/*.c))
GLUE_SRCS   = $(sort $(wildcard src/*.c))
OBJS        = $(CORE_SRCS:.c=.o) $(GLUE_SRCS:.c=.o)

# The install script is built from one file per topic, in name order.
INSTALL_SQL = $(sort $(wildcard src/sql/install/*.sql))
# Upgrades (CONTRIBUTING.md, Upgrades): the install scripts of released
# versions are frozen in src/sql/versions/, and the upgrade scripts are
# hand-written deltas in src/sql/upgrade/, installed as they are.
DATA_built  = billing--$(EXTVERSION).sql
DATA        = $(wildcard src/sql/versions/billing--*.sql) $(wildcard src/sql/upgrade/billing--*--*.sql)

# pg_regress: sql/<name>.sql against expected/<name>.out, in name order.
REGRESS     = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=billing
ISOLATION   = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=billing

ICU_CFLAGS  := $(shell pkg-config --cflags icu-i18n icu-uc 2>/dev/null)
ICU_LIBS    := $(shell pkg-config --libs icu-i18n icu-uc 2>/dev/null || echo -licui18n -licuuc)
# PostgreSQL's own headers are not -Wextra clean (unused parameters in
# inline functions): include them as system headers so that every warning
# left is about our code.
PG_CPPFLAGS = -isystem $(includedir_server)
# Warnings are errors in the test build (test/run.sh passes WERROR=-Werror),
# not in the shipped one: a newer compiler's new warning must not break a
# user's or a packager's build.
WERROR     ?=
PG_CFLAGS   = -Wall -Wextra $(WERROR) $(ICU_CFLAGS)
SHLIB_LINK  = $(ICU_LIBS)

EXTRA_CLEAN = billing--$(EXTVERSION).sql results/ regression.diffs regression.out \
              output_iso/ test/unit/bin/ test/fuzz/bin/ log/

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

billing--$(EXTVERSION).sql: $(INSTALL_SQL) billing.control
	( echo "-- billing $(EXTVERSION): generated from src/sql/install/*.sql, do not edit"; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION billing" to load this file. \quit'; \
	  for f in $(INSTALL_SQL); do echo; echo "-- $$f"; cat $$f; done ) > $@

# ---------------------------------------------------------------------------
# The pure C core on its own: unit tests and fuzzing under ASan + UBSan.

SAN_CC      ?= cc
SAN_FLAGS   = -std=c11 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all $(ICU_CFLAGS)
UNIT_TESTS  = $(basename $(notdir $(wildcard test/unit/test_*.c)))
FUZZ_TARGETS = $(basename $(notdir $(wildcard test/fuzz/fuzz_*.c)))
FUZZ_SECONDS ?= 10

test/unit/bin/%: test/unit/%.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/unit.h
	@mkdir -p test/unit/bin
	$(SAN_CC) $(SAN_FLAGS) -o $@ $< $(CORE_SRCS) $(ICU_LIBS)

test/fuzz/bin/%: test/fuzz/%.c $(CORE_SRCS) $(wildcard src/core/*.h)
	@mkdir -p test/fuzz/bin
	clang -g -O1 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all $(ICU_CFLAGS) -o $@ $< $(CORE_SRCS) $(ICU_LIBS)

.PHONY: unit unit-build fuzz fuzz-build test demo bench sim installcheck-regress installcheck-isolation worker
unit-build: $(addprefix test/unit/bin/,$(UNIT_TESTS))
unit: unit-build
	@for t in $(UNIT_TESTS); do test/unit/bin/$$t || exit 1; done

fuzz-build: $(addprefix test/fuzz/bin/,$(FUZZ_TARGETS))
fuzz: fuzz-build
	sh test/fuzz/run.sh $(FUZZ_SECONDS)

# installcheck runs both; these run one each, so one failing does not hide
# the other (test/cluster.sh uses them).
installcheck-regress: submake $(REGRESS_PREP)
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation: submake $(REGRESS_PREP)
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)

# The entry points of README.md: each sets up what it needs.
test:
	sh test/run.sh test
demo:
	sh test/run.sh demo
bench:
	sh test/run.sh bench "$(BENCH)"
# The simulator (CONTRIBUTING.md, The simulator) for one seed.
SEED ?= 1
DAYS ?= 60
ACCOUNTS ?= 10
sim:
	sh test/sim/run.sh "$(SEED)" "$(DAYS)" "$(ACCOUNTS)"
# billing distributed on a Citus coordinator and two workers (README:
# Scaling out); needs a Citus installed for this PostgreSQL.
.PHONY: citus citus-bench
citus:
	sh test/citus/run.sh
# the cluster against one plain node, 100k accounts (docs/performance.md,
# Scaling out); not part of `make bench`, which needs no Citus
citus-bench:
	sh test/citus/run.sh bench

# The delivery worker (worker/README.md): a program of its own, not part of
# the extension; libpq, libcurl and OpenSSL.
worker:
	$(MAKE) -C worker PG_CONFIG=$(PG_CONFIG) WERROR=$(WERROR)

# PGXS tracks no header dependencies: rebuild everything when one changes.
$(OBJS): $(wildcard src/*.h src/core/*.h)
