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

# dev_reseller creates the demo reseller once (after migrations) and keeps
# its API key in .run/demo-reseller.key.
dev_reseller() {
	if [[ ! -s "$RUN/demo-reseller.key" ]]; then
		(umask 077 && "$BIN/starter" reseller add --name "Demo Reseller" --contact-email reseller@demo.example \
			2>>"$RUN/logs/reseller.log" | tail -n1 >"$RUN/demo-reseller.key")
		log "created the demo reseller"
	fi
	DEV_SETUP_SUMMARY="  CA certificates  $RUN/ca   (http://127.0.0.1:$HTTP_PORT/repository/ca/<issuer>.pem)
  Demo reseller    Authorization: Bearer $(cat "$RUN/demo-reseller.key")
  Staff codec      token in $RUN/dev.env (CERTDESK_STAFF_TOKEN); sign in at http://127.0.0.1:$HTTP_PORT/codec/session"
}
