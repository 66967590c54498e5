#!/usr/bin/env bash
# Temporal server v1.29.1 persisted in PostgreSQL: CertDesk's second local
# mode (make run TEMPORAL=postgres, the benchmarks with
# CERTDESK_BENCH_TEMPORAL=postgres, the chaos harness).
#
#   scripts/temporal-postgres.sh setup     create the two databases if missing, apply
#                                          the server's schema (setup-schema + update-schema)
#   scripts/temporal-postgres.sh start     run the server in the foreground (exec)
#   scripts/temporal-postgres.sh register  wait for the frontend, create namespace
#                                          "default" and CertDesk's search attributes
#   scripts/temporal-postgres.sh drop      drop the two databases
#
# Binaries: bin/temporal-server and bin/temporal-sql-tool (make temporal-server,
# pinned by tools/temporal-server/go.mod), bin/temporal (the CLI, for register).
# Configuration: tools/temporal-server/config/certdesk-postgres.yaml, rendered
# by the server from these variables:
#
#   TEMPORAL_PORT      frontend gRPC port (7233; below 33000: membership ports are
#                      stored as smallint); the other ports follow it:
#                      history +1, matching +2, worker +6, frontend HTTP +10,
#                      membership -300/-299/-298/-294, metrics +767
#   TPG_PG_HOST        PostgreSQL host (127.0.0.1)
#   TPG_PG_PORT        PostgreSQL port (5432)
#   TPG_PG_USER        PostgreSQL user (postgres; trust auth, or TPG_PG_PASSWORD)
#   TPG_DB             history database (temporal)
#   TPG_VIS_DB         visibility database (temporal_visibility)
#   TPG_LOG_LEVEL      server log level (warn)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/bin"
TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TPG_PG_HOST=${TPG_PG_HOST:-127.0.0.1}
TPG_PG_PORT=${TPG_PG_PORT:-5432}
TPG_PG_USER=${TPG_PG_USER:-postgres}
TPG_PG_PASSWORD=${TPG_PG_PASSWORD:-}
TPG_DB=${TPG_DB:-temporal}
TPG_VIS_DB=${TPG_VIS_DB:-temporal_visibility}
SERVER_VERSION=v1.29.1

log() { printf '[temporal-postgres] %s\n' "$*" >&2; }

# sql_tool ARGS: temporal-sql-tool against the PostgreSQL server; its log
# is shown only when it fails.
sql_tool() {
	local out
	out=$(mktemp)
	if ! "$BIN/temporal-sql-tool" --quiet --plugin postgres12 --endpoint "$TPG_PG_HOST" --port "$TPG_PG_PORT" \
		--user "$TPG_PG_USER" --password "$TPG_PG_PASSWORD" "$@" >"$out" 2>&1; then
		cat "$out" >&2
		rm -f "$out"
		return 1
	fi
	rm -f "$out"
}

# schema_dir NAME: the schema shipped in the pinned server module.
schema_dir() {
	local dir
	dir=$(cd "$ROOT/tools/temporal-server" && go list -m -f '{{.Dir}}' go.temporal.io/server)
	[[ -d "$dir/schema/postgresql/v12/$1/versioned" ]] || {
		log "no schema at $dir/schema/postgresql/v12/$1 (run make temporal-server)"
		exit 1
	}
	printf '%s/schema/postgresql/v12/%s/versioned' "$dir" "$1"
}

psql_admin() {
	PGPASSWORD=$TPG_PG_PASSWORD psql -X -q -v ON_ERROR_STOP=1 \
		"postgres://$TPG_PG_USER@$TPG_PG_HOST:$TPG_PG_PORT/postgres?sslmode=disable" "$@"
}

setup_one() {
	local db=$1 schema=$2
	if [[ $(psql_admin -Atc "select 1 from pg_database where datname = '$db'") != 1 ]]; then
		sql_tool --db "$db" create-database
		log "created database $db"
	fi
	local has
	has=$(PGPASSWORD=$TPG_PG_PASSWORD psql -X -At "postgres://$TPG_PG_USER@$TPG_PG_HOST:$TPG_PG_PORT/$db?sslmode=disable" \
		-c "select count(*) from information_schema.tables where table_name = 'schema_version'")
	if [[ $has == 0 ]]; then
		sql_tool --db "$db" setup-schema -v 0.0
	fi
	sql_tool --db "$db" update-schema -d "$(schema_dir "$schema")"
	log "$db: schema $(PGPASSWORD=$TPG_PG_PASSWORD psql -X -At "postgres://$TPG_PG_USER@$TPG_PG_HOST:$TPG_PG_PORT/$db?sslmode=disable" -c 'select curr_version from schema_version')"
}

cmd_setup() {
	[[ -x "$BIN/temporal-sql-tool" ]] || { log "bin/temporal-sql-tool is missing: make temporal-server"; exit 1; }
	setup_one "$TPG_DB" temporal
	setup_one "$TPG_VIS_DB" visibility
}

cmd_drop() {
	for db in "$TPG_DB" "$TPG_VIS_DB"; do
		psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
	done
}

cmd_start() {
	[[ -x "$BIN/temporal-server" ]] || { log "bin/temporal-server is missing: make temporal-server"; exit 1; }
	local p=$TEMPORAL_PORT
	((p > 300 && p - 294 <= 32767)) || { log "TEMPORAL_PORT=$p: membership ports (port-300..port-294) must fit a smallint"; exit 1; }
	export TPG_FRONTEND_PORT=$p TPG_HISTORY_PORT=$((p + 1)) TPG_MATCHING_PORT=$((p + 2)) TPG_WORKER_PORT=$((p + 6))
	export TPG_FRONTEND_HTTP_PORT=$((p + 10))
	export TPG_FRONTEND_MEMBERSHIP_PORT=$((p - 300)) TPG_HISTORY_MEMBERSHIP_PORT=$((p - 299))
	export TPG_MATCHING_MEMBERSHIP_PORT=$((p - 298)) TPG_WORKER_MEMBERSHIP_PORT=$((p - 294))
	export TPG_METRICS_PORT=${TPG_METRICS_PORT:-$((p + 767))}
	export TPG_PG_ADDR="$TPG_PG_HOST:$TPG_PG_PORT" TPG_PG_USER TPG_PG_PASSWORD TPG_DB TPG_VIS_DB
	export TPG_DYNAMIC_CONFIG="$ROOT/tools/temporal-server/config/dynamicconfig/certdesk.yaml"
	exec "$BIN/temporal-server" --root "$ROOT/tools/temporal-server" --config config \
		--env certdesk-postgres --allow-no-auth start
}

cmd_register() {
	local addr="127.0.0.1:$TEMPORAL_PORT" i
	for i in $(seq 1 240); do
		"$BIN/temporal" operator cluster health --address "$addr" >/dev/null 2>&1 && break
		((i == 240)) && { log "Temporal at $addr did not become healthy"; exit 1; }
		sleep 0.5
	done
	if ! "$BIN/temporal" operator namespace describe --address "$addr" --namespace default >/dev/null 2>&1; then
		"$BIN/temporal" operator namespace create --address "$addr" --namespace default --retention 72h >/dev/null
		log "namespace default created"
	fi
	# A new namespace reaches every service's cache within seconds; retry.
	local sa name type have
	for sa in CaseType=Keyword CaseStatus=Keyword ResellerID=Keyword CertificateSerial=Keyword DueAt=Datetime; do
		name=${sa%=*} type=${sa#*=}
		for i in $(seq 1 60); do
			have=$("$BIN/temporal" operator search-attribute list --address "$addr" --namespace default -o json 2>/dev/null || true)
			grep -q "\"$name\"" <<<"$have" && break
			"$BIN/temporal" operator search-attribute create --address "$addr" --namespace default \
				--name "$name" --type "$type" >/dev/null 2>&1 || true
			sleep 0.5
			((i == 60)) && { log "search attribute $name could not be registered"; exit 1; }
		done
	done
	# Starting a workflow also needs the namespace in the history service's cache.
	for i in $(seq 1 60); do
		"$BIN/temporal" workflow list --address "$addr" --namespace default --limit 1 \
			--query 'CaseType = "probe"' >/dev/null 2>&1 && break
		sleep 0.5
	done
	log "namespace default and search attributes ready on $addr (server $SERVER_VERSION, PostgreSQL $TPG_PG_HOST:$TPG_PG_PORT/$TPG_DB)"
}

case "${1:-}" in
setup) cmd_setup ;;
start) cmd_start ;;
register) cmd_register ;;
drop) cmd_drop ;;
*)
	sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
