#!/usr/bin/env bash
# scripts/deps.sh: the machine packages `make test` and `make run` need, and
# the machine's PostgreSQL running. Called by both targets (and so by .ci/run);
# safe to run any number of times; prints nothing when everything is there.
#
# Missing packages are installed when that is possible (root and apt-get, as
# `make bench-wrk` does for wrk); otherwise the script names them and goes on:
# the tests that need a missing tool skip and say so (for example TestPKCS11
# without SoftHSM2), the rest still run.
#
# Daemons from these packages (unbound, knot, PostgreSQL) are not started by
# the install: CertDesk's tests and `make run` start their own instances on
# loopback ports, and nothing may listen outside loopback.
set -uo pipefail

log() { printf 'deps: %s\n' "$*"; }

# have PATH...: every path exists (a file) or is a command on PATH or in sbin.
have() {
	local p
	for p in "$@"; do
		if [[ $p == /* ]]; then
			compgen -G "$p" >/dev/null || return 1
		else
			command -v "$p" >/dev/null 2>&1 || [[ -x /usr/sbin/$p || -x /sbin/$p ]] || return 1
		fi
	done
}

# package name, then what proves it is installed. The list is what the tests,
# `make run` and the README's commands use, plus the DNS and ACME tools of the
# coming milestone-2 work (knot, knot-dnsutils, unbound, dnsutils, certbot),
# installed now so that work finds them.
PACKAGES=(
	"openssl|openssl"
	"softhsm2|softhsm2-util /usr/lib/softhsm/libsofthsm2.so"
	"docker-compose|docker-compose"
	"postgresql-client|psql pg_isready"
	"postgresql|/usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl"
	"curl|curl"
	"jq|jq"
	"uuid-runtime|uuidgen"
	"unzip|unzip"
	"knot|knotd knotc"
	"knot-dnsutils|kdig knsupdate"
	"unbound|unbound unbound-control"
	"dnsutils|dig nsupdate"
	"certbot|certbot"
)

need=()
for entry in "${PACKAGES[@]}"; do
	pkg=${entry%%|*}
	# shellcheck disable=SC2086 # the proofs are a word list
	have ${entry#*|} || need+=("$pkg")
done

fresh_postgres=0
if ((${#need[@]})); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing ${need[*]}"
		[[ " ${need[*]} " == *" postgresql "* ]] && ! have /etc/postgresql/*/main && fresh_postgres=1
		export DEBIAN_FRONTEND=noninteractive
		# policy-rc.d 101 keeps package scripts from starting the daemons.
		policy=/usr/sbin/policy-rc.d
		made_policy=0
		if [[ ! -e $policy ]]; then
			printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
		fi
		out=$(apt-get install -y -qq --no-install-recommends "${need[@]}" 2>&1) ||
			out=$({ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } 2>&1) ||
			log "apt-get install failed: $(tail -n 3 <<<"$out")"
		((made_policy)) && rm -f "$policy"
	else
		log "missing ${need[*]}: install them (apt-get install ${need[*]}); tests needing them skip and say so"
	fi
	still=()
	for entry in "${PACKAGES[@]}"; do
		# shellcheck disable=SC2086
		[[ " ${need[*]} " == *" ${entry%%|*} "* ]] && ! have ${entry#*|} && still+=("${entry%%|*}")
	done
	((${#still[@]})) && log "still missing: ${still[*]}"
fi

# A PostgreSQL cluster this script has just installed gets the trust
# authentication on loopback that the tests and `make run` expect of a
# development machine (the machine's own clusters are left as they are).
if ((fresh_postgres)); then
	for hba in /etc/postgresql/*/main/pg_hba.conf; do
		[[ -f $hba ]] || continue
		sed -i -E 's/^((local|host)\s.*\s)(peer|scram-sha-256|md5)\s*$/\1trust/' "$hba"
		log "trust authentication on loopback for the new cluster ($hba)"
	done
fi

# The tests use the machine's PostgreSQL at 127.0.0.1:5432 (`make run` falls
# back to a private cluster on its own): start the installed cluster if it is
# down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
	cluster=$(compgen -G '/etc/postgresql/*/main' | sort -V | tail -n1)
	if [[ -n $cluster && $(id -u) -eq 0 ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
		version=$(basename "$(dirname "$cluster")")
		log "starting PostgreSQL $version"
		pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
		for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
		pg_isready -q -h 127.0.0.1 -p 5432 || log "PostgreSQL $version did not come up on 127.0.0.1:5432"
	else
		log "no PostgreSQL answers at 127.0.0.1:5432 and none can be started here: the integration tests need one (CERTDESK_TEST_DATABASE_URL)"
	fi
fi
exit 0
