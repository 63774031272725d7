# pg_txguard: PGXS build
#
#   make && sudo make install        build and install against $(PG_CONFIG)
#   make installcheck                regress + isolation + TAP tests, each in a
#                                    temporary instance that preloads the library
#
# scripts/test runs all of it from any checkout, as root or as a normal user.

MODULE_big = pg_txguard
OBJS = \
	src/pg_txguard.o \
	src/guc.o \
	src/shmem.o \
	src/registry.o \
	src/hooks.o \
	src/session.o \
	src/srf.o \
	src/events.o \
	src/timeout.o \
	src/stats.o \
	src/durations.o \
	src/sentinel.o \
	src/observe.o \
	src/upsert.o \
	src/upsert_batch.o \
	src/upsert_cache.o \
	src/upsert_relinfo.o \
	src/upsert_row.o \
	src/upsert_key.o \
	src/upsert_arbiter.o \
	src/upsert_plan.o \
	src/upsert_probe.o \
	src/lock.o

EXTENSION = pg_txguard
DATA = pg_txguard--0.1.sql
PGFILEDESC = "pg_txguard - see, bound and prevent broken transactions"

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

REGRESS = setup guc_prefix registry registry_privacy timeout stats durations \
	upsert upsert_batch upsert_security upsert_lock upsert_plan_cache \
	upsert_probe
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --encoding=UTF8 \
	--temp-instance=$(CURDIR)/tmp_check_regress --load-extension=pg_txguard

ISOLATION = registry_states timeout_locks \
	upsert_race upsert_delete upsert_serializable upsert_lock_wait \
	upsert_invalidation upsert_probe_snapshot
ISOLATION_OPTS = --temp-config=$(srcdir)/test/regress.conf --encoding=UTF8 \
	--temp-instance=$(CURDIR)/tmp_check_iso --load-extension=pg_txguard

TAP_TESTS = 1

EXTRA_CLEAN = tmp_check tmp_check_regress tmp_check_iso output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# NULLS NOT DISTINCT unique indexes exist from PostgreSQL 15 on
ifeq ($(shell test $(MAJORVERSION) -ge 15 && echo yes),yes)
REGRESS += upsert_nulls_not_distinct
endif

# every object depends on the shared headers
$(OBJS): src/pg_txguard.h src/compat.h src/srf.h src/upsert.h
