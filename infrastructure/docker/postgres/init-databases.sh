#!/bin/sh
# Runs once, when the postgres volume is first initialised: one database and one user each for
# Nessie's version store, Nessie GC's live-content sets and Airflow's metadata, so none can touch
# another's tables.
# Changing a password in .env later needs `ALTER ROLE ... PASSWORD ...` (or `make clean` to start over).
set -eu
: "${NESSIE_DB_PASSWORD:?set NESSIE_DB_PASSWORD in .env}"
: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}"
: "${NESSIE_GC_DB_PASSWORD:?set NESSIE_GC_DB_PASSWORD in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v nessie_pw="$NESSIE_DB_PASSWORD" -v airflow_pw="$AIRFLOW_DB_PASSWORD" \
  -v nessie_gc_pw="$NESSIE_GC_DB_PASSWORD" <<'SQL'
CREATE ROLE nessie LOGIN PASSWORD :'nessie_pw';
CREATE DATABASE nessie OWNER nessie;
CREATE ROLE nessie_gc LOGIN PASSWORD :'nessie_gc_pw';
CREATE DATABASE nessie_gc OWNER nessie_gc;
REVOKE ALL ON DATABASE nessie_gc FROM PUBLIC;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
REVOKE ALL ON DATABASE nessie FROM PUBLIC;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
SQL
