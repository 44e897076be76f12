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
               src/es_project.o \
               src/event_store.o
DATA         = event_store--$(EXTVERSION).sql event_store--0.1.0.sql \
               event_store--0.1.0--0.2.0.sql
PGFILEDESC   = "event_store - PostgreSQL as an event store"

# Every suite lives under test/ (test/README.md says which suite a new test
# belongs in).  The server must preload the library.
#
#   make installcheck        pg_regress (test/sql, test/expected) and isolation
#                            (test/specs, test/expected), on a running server
#   make check-pgtap         pgTAP (test/pgtap), each file in a new database
#   make check-tap           TAP (test/t), each test starts its own clusters
#   make check-layers        the layering of src/ (src/README.md)
#   make check-all           all of them on a throwaway cluster: scripts/test.sh
REGRESS      = setup append read feed triggers errors limits lifecycle atomicity privileges \
               correctness projections operations reinstall
REGRESS_OPTS = --inputdir=test

ISOLATION      = append_conflict append_vs_insert conflict_after_rollback feed_gap_safe snapshot_vs_append erase_vs_append erase_vs_snapshot \
                 read_snapshot upcaster_in_use time_travel_prefix drop_extension_race upcaster_chain_race
ISOLATION_OPTS = --inputdir=test

# TAP tests (PostgreSQL::Test::Cluster), run by check-tap, not installcheck
PROVE_TESTS  = test/t/*.pl

# No JIT bitcode: it needs clang, and these functions gain nothing from it.
# (Before the include: PGXS decides at include time.)
override with_llvm = no

PG_CONFIG ?= pg_config
PG_CPPFLAGS += -I$(srcdir)/src -DES_VERSION=\"$(EXTVERSION)\"
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the TAP tests' own modules (after the include: Makefile.global sets it)
PROVE_FLAGS += -I test/t

# CI builds with warnings as errors: make ES_WERROR=1
ifdef ES_WERROR
override CFLAGS += -Wall -Werror
endif

# the layering of src/ (src/README.md): after a build
check-layers: all
	python3 scripts/check_layers.py src

# pgTAP on the server PGHOST/PGPORT point at (make installcheck's): each file
# in a new database with the extension and pgTAP
PGTAP_DB ?= es_pgtap
check-pgtap:
	@set -e; for f in test/pgtap/*.sql; do \
	  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $(PGTAP_DB)" -c "CREATE DATABASE $(PGTAP_DB)"; \
	  psql -X -q -d $(PGTAP_DB) -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION event_store"; \
	  pg_prove --ext .sql -d $(PGTAP_DB) $$f; \
	done; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $(PGTAP_DB)"

# TAP: PGXS's prove_installcheck (clusters of their own, the installed build)
check-tap:
	$(prove_installcheck)

# everything, on a throwaway cluster (what CI runs)
check-all:
	bash scripts/test.sh

.PHONY: check-layers check-pgtap check-tap check-all

# esctl, the operators' tool (cli/, docs/esctl.md): built and installed with
# the extension, into pg_config --bindir with a link in /usr/local/bin
# (cli/Makefile: ES_LINKDIR).  ES_NO_CLI=1 leaves it out (debian/rules: the
# tool is a package of its own, built once).
ifndef ES_NO_CLI
all: esctl
install: install-esctl
uninstall: uninstall-esctl
endif
clean: clean-esctl

esctl:
	$(MAKE) -C $(srcdir)/cli PG_CONFIG='$(PG_CONFIG)' ES_VERSION=$(EXTVERSION)
install-esctl: esctl
	$(MAKE) -C $(srcdir)/cli install PG_CONFIG='$(PG_CONFIG)' ES_VERSION=$(EXTVERSION)
uninstall-esctl:
	$(MAKE) -C $(srcdir)/cli uninstall PG_CONFIG='$(PG_CONFIG)'
clean-esctl:
	$(MAKE) -C $(srcdir)/cli clean

.PHONY: esctl install-esctl uninstall-esctl clean-esctl

# print a variable (used by scripts/test.sh): make -s print-REGRESS
print-%:
	@echo $($*)

# PGXS tracks no header dependencies: every object depends on every header.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# An out-of-tree build (VPATH, as pg_buildext build build-MAJOR does) writes
# the objects to src/ of the build directory: make it.
ifneq ($(srcdir),.)
$(shell mkdir -p src)
endif

# The monitoring files (monitoring/; docs/operations.md, "Metrics and
# alerts"), installed with the extension into a folder of their own under
# the extensions' documentation, $(docdir)/extension/event_store/ (PGXS's
# DOCS would put them, with their generic names, straight into the folder
# every extension shares).  The rules and their unit test stay side by side:
# promtool test rules finds the rules next to the test file.
ES_MONITORING = monitoring/postgres_exporter.yml monitoring/queries.sql \
                monitoring/event_store.rules.yml monitoring/event_store.rules.test.yml
install: install-monitoring
uninstall: uninstall-monitoring
install-monitoring:
	$(MKDIR_P) '$(DESTDIR)$(docdir)/$(docmoduledir)/event_store'
	$(INSTALL_DATA) $(addprefix $(srcdir)/, $(ES_MONITORING)) '$(DESTDIR)$(docdir)/$(docmoduledir)/event_store/'
uninstall-monitoring:
	rm -f $(addprefix '$(DESTDIR)$(docdir)/$(docmoduledir)/event_store'/, $(notdir $(ES_MONITORING)))
	-rmdir '$(DESTDIR)$(docdir)/$(docmoduledir)/event_store'
.PHONY: install-monitoring uninstall-monitoring
