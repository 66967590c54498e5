#!/usr/bin/env bash
# make run: CertDesk's whole stack on one machine, no Docker.
#
# PostgreSQL (the server at DATABASE_URL if it answers, else a private cluster
# under .run/pg), the Temporal dev server (SQLite under .run/, Web UI), MailDev,
# migrations, a development CA, a demo reseller, the worker (all roles) and the
# starter. Prints the URLs, waits for /readyz, writes .run/env (what a second
# shell sources to run the README's operator and staff commands), stops
# everything on Ctrl-C.
# TEMPORAL=postgres: the standalone Temporal server on PostgreSQL instead of
# the dev server (scripts/temporal-postgres.sh), with bin/temporal-ui.
# A second run reuses .run/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/.run"
BIN="$ROOT/bin"
mkdir -p "$RUN/logs"

TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
SMTP_PORT=${SMTP_PORT:-1025}
MAILDEV_WEB_PORT=${MAILDEV_WEB_PORT:-1080}
HTTP_PORT=${HTTP_PORT:-8080}
ACME_PORT=${ACME_PORT:-8443}
PRIVATE_PG_PORT=${PRIVATE_PG_PORT:-55432}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/certdesk?sslmode=disable}

PIDS=()
PRIVATE_PG=""

log() { printf '[make run] %s\n' "$*"; }

stop_all() {
	trap - INT TERM EXIT
	log "stopping..."
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	bash "$ROOT/scripts/dns.sh" stop >/dev/null 2>&1 || true
	if [[ -n "$PRIVATE_PG" ]]; then
		as_pg "$PGBIN/pg_ctl" -D "$PRIVATE_PG" -m fast -w stop >/dev/null 2>&1 || true
	fi
	log "stopped"
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

# start NAME CMD...: runs CMD in the background, logging to .run/logs/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$RUN/logs/$name.log" 2>&1 &
	PIDS+=($!)
}

wait_for() {
	local what=$1 tries=$2
	shift 2
	for _ in $(seq 1 "$tries"); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.5
	done
	log "$what did not come up; see $RUN/logs/"
	exit 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$SMTP_PORT" "$MAILDEV_WEB_PORT" "$HTTP_PORT" "$ACME_PORT"; do
	port_free "$p" || { log "port $p is in use (override with TEMPORAL_PORT, TEMPORAL_UI_PORT, SMTP_PORT, MAILDEV_WEB_PORT, HTTP_PORT, ACME_PORT)"; exit 1; }
done

# --- PostgreSQL ------------------------------------------------------------
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
db_name=$(sed -E 's#^[^/]*//[^/]*/([^?]*).*#\1#' <<<"$DATABASE_URL")
admin_url=$(sed -E "s#^([^/]*//[^/]*/)[^?]*#\1postgres#" <<<"$DATABASE_URL")
if psql "$admin_url" -Atc 'select 1' >/dev/null 2>&1; then
	log "PostgreSQL answers at DATABASE_URL"
else
	[[ -n "$PGBIN" ]] || { log "no PostgreSQL at DATABASE_URL and no PostgreSQL binaries to start one"; exit 1; }
	PRIVATE_PG="$RUN/pg"
	if [[ ! -f "$PRIVATE_PG/PG_VERSION" ]]; then
		log "creating a private PostgreSQL cluster in $PRIVATE_PG"
		mkdir -p "$PRIVATE_PG"
		[[ $(id -u) -eq 0 ]] && chown postgres "$PRIVATE_PG" "$RUN"
		as_pg "$PGBIN/initdb" -D "$PRIVATE_PG" -U postgres --auth=trust >"$RUN/logs/initdb.log"
	fi
	as_pg "$PGBIN/pg_ctl" -D "$PRIVATE_PG" -l "$PRIVATE_PG/server.log" -w \
		-o "-p $PRIVATE_PG_PORT -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
	DATABASE_URL="postgres://postgres@127.0.0.1:$PRIVATE_PG_PORT/$db_name?sslmode=disable"
	admin_url="postgres://postgres@127.0.0.1:$PRIVATE_PG_PORT/postgres?sslmode=disable"
fi
if [[ $(psql "$admin_url" -Atc "select 1 from pg_database where datname = '$db_name'") != 1 ]]; then
	psql "$admin_url" -qc "CREATE DATABASE \"$db_name\"" >/dev/null
	log "created database $db_name"
fi
export DATABASE_URL

if [[ ${TEMPORAL:-} == postgres ]]; then
# --- Temporal server on PostgreSQL (make run TEMPORAL=postgres) -------------
# The standalone server v1.29.1 (bin/temporal-server), its history and
# visibility in databases temporal and temporal_visibility on the same
# PostgreSQL as CertDesk, and the Web UI from bin/temporal-ui (the standalone
# server has none). scripts/temporal-postgres.sh holds the details.
pg_hostport=$(sed -E 's#^[^/]*//([^@/]*@)?([^/?]*).*#\2#' <<<"$admin_url")
pg_user=$(sed -E 's#^[^/]*//(([^:@/]*)(:[^@/]*)?@)?.*#\2#' <<<"$admin_url")
export TEMPORAL_PORT TPG_PG_HOST=${pg_hostport%:*} TPG_PG_PORT=${pg_hostport##*:} TPG_PG_USER=${pg_user:-postgres}
[[ $TPG_PG_PORT == "$pg_hostport" ]] && TPG_PG_PORT=5432
bash "$ROOT/scripts/temporal-postgres.sh" setup 2>&1 | sed 's/^/[make run] /'
start temporal "$ROOT/scripts/temporal-postgres.sh" start
ui_args=(-temporal "127.0.0.1:$TEMPORAL_PORT" -listen "127.0.0.1:$TEMPORAL_UI_PORT")
[[ -n ${TEMPORAL_UI_CODEC:-} ]] && ui_args+=(-codec "$TEMPORAL_UI_CODEC")
start temporal-ui "$BIN/temporal-ui" "${ui_args[@]}"
else
# --- Temporal dev server ----------------------------------------------------
sa_args=()
for sa in CaseType=Keyword CaseStatus=Keyword ResellerID=Keyword CertificateSerial=Keyword DueAt=Datetime; do
	sa_args+=(--search-attribute "$sa")
done
start temporal "$BIN/temporal" server start-dev \
	--ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
	--db-filename "$RUN/temporal.db" \
	--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
	--dynamic-config-value system.enableActivityEagerExecution=true \
	--dynamic-config-value matching.numTaskqueueReadPartitions=1 \
	--dynamic-config-value matching.numTaskqueueWritePartitions=1 \
	--ui-codec-endpoint "http://127.0.0.1:$HTTP_PORT/codec" \
	--log-level warn "${sa_args[@]}" ${TEMPORAL_EXTRA_ARGS:-}
fi
export CERTDESK_TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT"
export CERTDESK_TEMPORAL_UI_URL="http://127.0.0.1:$TEMPORAL_UI_PORT"

# --- MailDev ----------------------------------------------------------------
start maildev node "$ROOT/tools/maildev/node_modules/maildev/bin/maildev" \
	--smtp "$SMTP_PORT" --web "$MAILDEV_WEB_PORT" --ip 127.0.0.1 --silent
export CERTDESK_SMTP_HOST=127.0.0.1 CERTDESK_SMTP_PORT="$SMTP_PORT" CERTDESK_SMTP_TLS=none
export CERTDESK_HTTP_ADDR="127.0.0.1:$HTTP_PORT"
export CERTDESK_PUBLIC_BASE_URL=${CERTDESK_PUBLIC_BASE_URL:-http://127.0.0.1:$HTTP_PORT}

wait_for "Temporal" 240 "$BIN/temporal" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT"
if [[ ${TEMPORAL:-} == postgres ]]; then
	bash "$ROOT/scripts/temporal-postgres.sh" register 2>&1 | sed 's/^/[make run] /'
fi
wait_for "MailDev" 120 curl -fsS "http://127.0.0.1:$MAILDEV_WEB_PORT/healthz"

# --- DNS: Knot DNS (DNSSEC-signed test zones, RFC 2136 updates with TSIG) and
# a validating Unbound, the CA's resolver (scripts/dns.sh) -------------------
bash "$ROOT/scripts/dns.sh" start >"$RUN/logs/dns.log" 2>&1 || { cat "$RUN/logs/dns.log"; exit 1; }
set -a
# shellcheck disable=SC1090
source <(bash "$ROOT/scripts/dns.sh" env)
set +a
# Domain validation on this machine: names point at loopback, which only
# this development setting lets the validator reach; the file method on a
# port a user can bind (production: 80 or 443 only).
export CERTDESK_DCV_DEV_NETWORKS=127.0.0.0/8,::1/128
export CERTDESK_DCV_HTTP_PORT=${DCV_HTTP_PORT:-8088}
# The remote network perspectives (BR §3.2.2.9): one worker process each.
export CERTDESK_PERSPECTIVES=${CERTDESK_PERSPECTIVES:-us-east:ARIN,eu-west:RIPE,ap-northeast:APNIC,us-west:ARIN,eu-central:RIPE}

# --- CertDesk ----------------------------------------------------------------
# shellcheck source=scripts/dev-setup.sh
source "$ROOT/scripts/dev-setup.sh"
"$BIN/starter" migrate >"$RUN/logs/migrate.log" 2>&1 || { cat "$RUN/logs/migrate.log"; exit 1; }
dev_reseller
# --- Certificate Transparency: TesseraCT logs accepting the development
# root (scripts/ctlogs.sh; the CA exists by now), before the processes that
# read their list ---------------------------------------------------------------
rm -f "$RUN/ct/log_list.json"
start ctlogs bash "$ROOT/scripts/ctlogs.sh" run
wait_for "CT logs" 480 test -f "$RUN/ct/log_list.json"
export CERTDESK_CT_LOG_LIST="$RUN/ct/log_list.json"
# The local logs are Static CT API logs: Apple's RFC 6962-log rule cannot be
# met here (README, Certificate Transparency).
export CERTDESK_CT_POLICY=${CERTDESK_CT_POLICY:-chrome,apple-static}
start worker "$BIN/worker" -role "${WORKER_ROLE:-all}" -metrics-addr "127.0.0.1:${WORKER_METRICS_PORT:-9464}"
IFS=, read -ra perspectives <<<"$CERTDESK_PERSPECTIVES"
for p in "${perspectives[@]}"; do
	start "perspective-${p%%:*}" "$BIN/worker" -role perspective -name "${p%%:*}" -rir "${p##*:}" -metrics-addr ""
done
# The ACME server's HTTPS listener (RFC 8555 requires HTTPS): a certificate
# for the loopback listener from the development CA, made at each start (it
# lives 30 days). Clients trust the development root, $CERTDESK_CA_DIR/root.pem
# (certbot: REQUESTS_CA_BUNDLE).
# The worker's configuration checks that CERTDESK_ACME_TLS_CERT/KEY can be
# read, so the command that makes them runs without them.
export CERTDESK_ACME_ADDR="127.0.0.1:$ACME_PORT"
env -u CERTDESK_ACME_TLS_CERT -u CERTDESK_ACME_TLS_KEY \
	"$BIN/worker" listener-cert -cert "$RUN/acme-tls.pem" -key "$RUN/acme-tls-key.pem" -hosts 127.0.0.1,localhost \
	>"$RUN/logs/acme-tls.log" 2>&1 || { cat "$RUN/logs/acme-tls.log"; exit 1; }
export CERTDESK_ACME_TLS_CERT="$RUN/acme-tls.pem" CERTDESK_ACME_TLS_KEY="$RUN/acme-tls-key.pem"
start starter "$BIN/starter"
wait_for "starter /readyz" 120 curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz"
staff_cli_env
write_env
{
	echo "# domain validation, perspectives, the local DNS and CT logs"
	printf 'export CERTDESK_DCV_RESOLVER=%q CERTDESK_DCV_DEV_NETWORKS=%q CERTDESK_DCV_HTTP_PORT=%q\n' \
		"$CERTDESK_DCV_RESOLVER" "$CERTDESK_DCV_DEV_NETWORKS" "$CERTDESK_DCV_HTTP_PORT"
	printf 'export CERTDESK_PERSPECTIVES=%q CERTDESK_CT_LOG_LIST=%q CERTDESK_CT_POLICY=%q\n' "$CERTDESK_PERSPECTIVES" "$CERTDESK_CT_LOG_LIST" "$CERTDESK_CT_POLICY"
	echo "# the ACME server (directory https://$CERTDESK_ACME_ADDR/acme/directory; certbot: REQUESTS_CA_BUNDLE=\$CERTDESK_CA_DIR/root.pem)"
	printf 'export CERTDESK_ACME_ADDR=%q CERTDESK_ACME_TLS_CERT=%q CERTDESK_ACME_TLS_KEY=%q\n' "$CERTDESK_ACME_ADDR" "$CERTDESK_ACME_TLS_CERT" "$CERTDESK_ACME_TLS_KEY"
	bash "$ROOT/scripts/dns.sh" env | sed 's/^/export /'
} >>"$RUN/env"

cat <<EOF

CertDesk is running. Ctrl-C stops everything.

  Starter API      http://127.0.0.1:$HTTP_PORT   (/healthz, /readyz, /metrics, /openapi.yaml)
  ACME directory   https://$CERTDESK_ACME_ADDR/acme/directory   (trust $CERTDESK_CA_DIR/root.pem, e.g. REQUESTS_CA_BUNDLE for certbot)
  Worker metrics   http://127.0.0.1:${WORKER_METRICS_PORT:-9464}/metrics
  Temporal Web UI  http://127.0.0.1:$TEMPORAL_UI_PORT
  Temporal gRPC    127.0.0.1:$TEMPORAL_PORT   (${TEMPORAL:-dev server, SQLite}${TEMPORAL:+: server v1.29.1, history in PostgreSQL})
  MailDev          http://127.0.0.1:$MAILDEV_WEB_PORT   (SMTP 127.0.0.1:$SMTP_PORT)
  DNS              resolver $CERTDESK_DCV_RESOLVER (validating), zones at $CERTDESK_DEV_DNS_SERVER: $CERTDESK_DEV_ZONES
  Perspectives     $CERTDESK_PERSPECTIVES
  CT logs          log list $CERTDESK_CT_LOG_LIST
  PostgreSQL       $DATABASE_URL
  Logs             $RUN/logs/
${DEV_SETUP_SUMMARY:-}

In another shell, before the README's operator and staff commands:  . .run/env
EOF

# Wait until a child dies or Ctrl-C arrives; either way stop everything.
set +e
wait -n "${PIDS[@]}"
log "a process exited; see $RUN/logs/"
