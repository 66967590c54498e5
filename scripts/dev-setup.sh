#!/usr/bin/env bash
# Sourced by scripts/run.sh: development secrets, the development CA.
# Secrets are generated once into .run/dev.env (never committed) and reused.
if [[ ! -f "$RUN/dev.env" ]]; then
	umask 077
	{
		echo "export CERTDESK_PII_KEYS=dev1:$(openssl rand -base64 32)"
		echo "export CERTDESK_BLIND_INDEX_KEY=$(openssl rand -base64 32)"
		echo "export CERTDESK_CA_PASSPHRASE=$(openssl rand -hex 24)"
		echo "export CERTDESK_CODEC_KEY=$(openssl rand -base64 32)"
		echo "export CERTDESK_STAFF_TOKEN=$(openssl rand -hex 24)"
	} >"$RUN/dev.env"
	log "generated development secrets in $RUN/dev.env"
fi
# shellcheck source=/dev/null
source "$RUN/dev.env"
export CERTDESK_CA_DIR="$RUN/ca"
export CERTDESK_REGISTRY_FILE="$ROOT/dev/registry.json"
if [[ ! -f "$RUN/ca/ca.json" ]]; then
	"$BIN/worker" bootstrap-ca -if-missing >"$RUN/logs/bootstrap-ca.log" 2>&1 || { cat "$RUN/logs/bootstrap-ca.log"; exit 1; }
	log "created the development CA in $RUN/ca"
fi

# dev_reseller creates the demo reseller (id rs_demo) once, after the
# migrations, and keeps its API key in .run/demo-reseller.key.
dev_reseller() {
	if [[ ! -s "$RUN/demo-reseller.key" ]]; then
		(umask 077 && "$BIN/starter" reseller add --id rs_demo --name "Demo Reseller" --contact-email reseller@demo.example \
			2>>"$RUN/logs/reseller.log" | tail -n1 >"$RUN/demo-reseller.key")
		log "created the demo reseller"
	fi
	# A .run/ from before the fixed id: the demo reseller is the first one made.
	DEMO_RESELLER_ID=$(psql "$DATABASE_URL" -Atc "select id from resellers where name = 'Demo Reseller' order by created_at limit 1" 2>/dev/null || true)
	DEV_SETUP_SUMMARY="  CA certificates  $RUN/ca   (http://127.0.0.1:$HTTP_PORT/repository/ca/<issuer>.pem)
  Demo reseller    ${DEMO_RESELLER_ID:-?}, API key in \$CERTDESK_DEMO_RESELLER_KEY (.run/env)
  Staff codec      sign in at http://127.0.0.1:$HTTP_PORT/codec/session with your token (.run/dev-staff.token)"
}

# staff_cli_env creates the development staff member once (id
# ${CERTDESK_STAFF_ID:-st_<login>}) and keeps its personal token in
# .run/dev-staff.token; write_env exports it as TEMPORAL_CODEC_AUTH, so the
# temporal CLI's decodes are logged under that id (the codec ignores any
# X-Staff-Id header) and its decisions name an active staff member.
staff_cli_env() {
	DEV_STAFF_ID=${CERTDESK_STAFF_ID:-st_$(id -un | tr -c 'A-Za-z0-9._@\n-' '_')}
	if [[ ! -s "$RUN/dev-staff.token" ]]; then
		(umask 077 && "$BIN/starter" staff add --id "$DEV_STAFF_ID" --name "Development staff ($(id -un))" \
			2>>"$RUN/logs/staff.log" | tail -n1 | sed 's/^token=//' >"$RUN/dev-staff.token")
		if [[ -s "$RUN/dev-staff.token" ]]; then
			log "created the development staff member $DEV_STAFF_ID"
		else
			log "could not create staff member $DEV_STAFF_ID (see $RUN/logs/staff.log); TEMPORAL_CODEC_AUTH falls back to the shared staff token"
		fi
	fi
	DEV_SETUP_SUMMARY="$DEV_SETUP_SUMMARY
  Staff member     $DEV_STAFF_ID, token in \$TEMPORAL_CODEC_AUTH (.run/env); decisions name \"reviewer\":\"$DEV_STAFF_ID\""
}

# write_env writes .run/env: everything CertDesk's commands (bin/starter,
# bin/worker) and the temporal CLI need to reach this stack, so that a second
# shell runs the README's commands after `. .run/env`. Secrets included: the
# file is readable by its owner only and never committed.
write_env() {
	q() { printf '%q' "$1"; }
	(
		umask 077
		cat >"$RUN/env.tmp" <<ENV
# Written by \`make run\` (scripts/run.sh); source it in any shell: . .run/env
# CertDesk's processes and operator commands (bin/starter, bin/worker)
export DATABASE_URL=$(q "$DATABASE_URL")
export CERTDESK_PII_KEYS=$(q "$CERTDESK_PII_KEYS")
export CERTDESK_BLIND_INDEX_KEY=$(q "$CERTDESK_BLIND_INDEX_KEY")
export CERTDESK_CA_PASSPHRASE=$(q "$CERTDESK_CA_PASSPHRASE")
export CERTDESK_CODEC_KEY=$(q "$CERTDESK_CODEC_KEY")
export CERTDESK_STAFF_TOKEN=$(q "$CERTDESK_STAFF_TOKEN")
export CERTDESK_CA_DIR=$(q "$CERTDESK_CA_DIR")
export CERTDESK_REGISTRY_FILE=$(q "$CERTDESK_REGISTRY_FILE")
export CERTDESK_TEMPORAL_ADDRESS=$(q "$CERTDESK_TEMPORAL_ADDRESS")
export CERTDESK_TEMPORAL_UI_URL=$(q "$CERTDESK_TEMPORAL_UI_URL")
export CERTDESK_SMTP_HOST=$(q "$CERTDESK_SMTP_HOST") CERTDESK_SMTP_PORT=$(q "$CERTDESK_SMTP_PORT") CERTDESK_SMTP_TLS=$(q "$CERTDESK_SMTP_TLS")
export CERTDESK_HTTP_ADDR=$(q "$CERTDESK_HTTP_ADDR")
export CERTDESK_PUBLIC_BASE_URL=$(q "$CERTDESK_PUBLIC_BASE_URL")
# the temporal CLI (bin/temporal): server, namespace and the starter's codec,
# so that payloads are encrypted and results decoded; TEMPORAL_CODEC_AUTH is
# the development staff member's personal token (the access log names it)
export TEMPORAL_ADDRESS=$(q "$CERTDESK_TEMPORAL_ADDRESS")
export TEMPORAL_NAMESPACE=default
export TEMPORAL_CODEC_ENDPOINT=$(q "http://127.0.0.1:$HTTP_PORT/codec")
export TEMPORAL_CODEC_AUTH=$(q "Bearer $(cat "$RUN/dev-staff.token" 2>/dev/null || printf '%s' "$CERTDESK_STAFF_TOKEN")")
export CERTDESK_STAFF_ID=$(q "${DEV_STAFF_ID:-}")
# the README's walk-throughs
export CERTDESK_DEMO_RESELLER_ID=$(q "${DEMO_RESELLER_ID:-}")
export CERTDESK_DEMO_RESELLER_KEY=$(q "$(cat "$RUN/demo-reseller.key")")
export CERTDESK_MAILDEV_URL=$(q "http://127.0.0.1:$MAILDEV_WEB_PORT")
ENV
		mv "$RUN/env.tmp" "$RUN/env"
	)
}
