#!/bin/sh
# test/sim/run.sh SEED DAYS ACCOUNTS: `make sim`.  Builds and installs the
# extension (under the install lock test/run.sh uses) and runs the simulator
# for one seed on a throwaway cluster (pg_virtualenv); never a server that
# was running before.
set -eu
# PG_MAJOR (15, 17) picks the PostgreSQL; the other PG* variables would
# point the throwaway cluster's clients elsewhere
want_major=${PG_MAJOR:-15}
for v in $(env | sed -n 's/^\(PG[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
PG_MAJOR=$want_major
cd "$(dirname "$0")/../.."
SEED=${1:-1}; DAYS=${2:-60}; ACCOUNTS=${3:-10}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
export PG_CONFIG
# what the simulator needs on top of the build: Debian's psycopg2
if ! /usr/bin/python3 -c 'import psycopg2' 2>/dev/null; then
	if [ "$(id -u)" != 0 ]; then
		echo "the simulator needs Debian's python3-psycopg2 (run as root, or apt-get install it)" >&2; exit 1
	fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-psycopg2
fi
make -s PG_CONFIG=$PG_CONFIG
flock /tmp/billing-install.lock sh -c "make -s install PG_CONFIG=$PG_CONFIG >/dev/null && \
	$(command -v pg_virtualenv) -t -v $PG_MAJOR -i '--encoding=UTF8 --locale=C.UTF-8' \
	sh test/sim/seeds.sh '$DAYS' '$ACCOUNTS' '$SEED'"
