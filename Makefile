# event_store: PGXS build
EXTENSION    = event_store
EXTVERSION   = 0.2.0
MODULE_big   = event_store
# one object per module, by layer (src/README.md)
OBJS         = src/es_util.o src/es_scan.o \
               src/es_validate.o src/es_register.o src/es_catalog.o \
               src/es_stream.o src/es_events.o \
               src/es_emit.o src/es_notifier.o \
               src/es_append.o src/es_trigger.o src/es_read.o src/es_feed.o src/es_admin.o \
               src/event_store.o
DATA         = event_store--$(EXTVERSION).sql event_store--0.1.0.sql \
               event_store--0.1.0--0.2.0.sql
PGFILEDESC   = "event_store - PostgreSQL as an event store"

# pg_regress (sql/, expected/); the server must preload the library.
REGRESS      = setup append read feed triggers errors limits lifecycle atomicity privileges \
               correctness reinstall
REGRESS_OPTS = --inputdir=.

# pg_isolation_regress (test/specs, test/expected)
ISOLATION      = append_conflict append_vs_insert conflict_after_rollback feed_gap_safe snapshot_vs_append erase_vs_append erase_vs_snapshot \
                 read_snapshot upcaster_in_use time_travel_prefix drop_extension_race upcaster_chain_race
ISOLATION_OPTS = --inputdir=test

# TAP tests (PostgreSQL::Test::Cluster)
TAP_TESTS    = 1
PROVE_TESTS  = test/t/*.pl

# No JIT bitcode: it needs clang, and these functions gain nothing from it.
# (Before the include: PGXS decides at include time.)
override with_llvm = no

PG_CONFIG ?= pg_config
PG_CPPFLAGS += -I$(srcdir)/src -DES_VERSION=\"$(EXTVERSION)\"
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# CI builds with warnings as errors: make ES_WERROR=1
ifdef ES_WERROR
override CFLAGS += -Wall -Werror
endif

# the layering of src/ (src/README.md): after a build
check-layers: all
	python3 scripts/check_layers.py src

.PHONY: check-layers

# print a variable (used by scripts/test.sh): make -s print-REGRESS
print-%:
	@echo $($*)

# PGXS tracks no header dependencies: every object depends on every header.
$(OBJS): $(wildcard src/*.h)
