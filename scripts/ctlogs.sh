#!/usr/bin/env bash
# The local Certificate Transparency logs of `make run`: CT_LOGS (3) TesseraCT
# logs (bin/tesseract-posix, `make tesseract`), each with its own key and
# operator, persisted under .run/ct/, accepting the development CA's root.
# The logs are run by internal/testenv/cmd/ctlogs, the harness the
# integration tests use, so both get the same logs and log list.
#
#   scripts/ctlogs.sh start   start in the background (pid in .run/ct/ctlogs.pid,
#                             output in .run/logs/ctlogs.log), wait until ready,
#                             print CERTDESK_CT_LOG_LIST=<path>
#   scripts/ctlogs.sh run     the same in the foreground (exec; for run.sh's start)
#   scripts/ctlogs.sh stop    stop what start started
#   scripts/ctlogs.sh env     print CERTDESK_CT_LOG_LIST=<path> if the logs are up
#
#   CT_ROOTS         comma-separated PEM files the logs accept (.run/ca/root.pem);
#                    the logs read it when they start: start them after the CA exists
#   CT_LOGS          number of logs (3: Chrome wants three SCTs
#                    for a validity over 180 days, and TLS certificates default to 199)
#   CT_PORTS         submission ports, one per log (6962,6963,6964)
#   CT_MONITOR_PORT  port serving every log's read API at /<log>/ (6980)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/.run"
DIR="$RUN/ct"
PIDFILE="$DIR/ctlogs.pid"
LIST="$DIR/log_list.json"
CT_ROOTS=${CT_ROOTS:-$RUN/ca/root.pem}
CT_LOGS=${CT_LOGS:-3}
CT_PORTS=${CT_PORTS:-6962,6963,6964}
CT_MONITOR_PORT=${CT_MONITOR_PORT:-6980}

log() { printf '[ctlogs] %s\n' "$*" >&2; }

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

build() {
	[[ -x "$ROOT/bin/tesseract-posix" ]] || { log "bin/tesseract-posix is missing: run make tesseract"; exit 1; }
	mkdir -p "$DIR" "$RUN/logs"
	(cd "$ROOT" && go build -o "$DIR/ctlogs" ./internal/testenv/cmd/ctlogs)
	roots=()
	IFS=, read -ra files <<<"$CT_ROOTS"
	for f in "${files[@]}"; do
		if [[ -f "$f" ]]; then roots+=("$f"); else log "warning: root file $f does not exist; the logs will not accept its chains"; fi
	done
	ARGS=(-dir "$DIR" -n "$CT_LOGS" -ports "$CT_PORTS" -monitor-port "$CT_MONITOR_PORT"
		-roots "$(IFS=,; echo "${roots[*]:-}")" -tesseract "$ROOT/bin/tesseract-posix")
}

case ${1:-} in
run)
	rm -f "$LIST"
	build
	exec "$DIR/ctlogs" "${ARGS[@]}"
	;;
start)
	if running; then
		log "already running (pid $(cat "$PIDFILE"))"
	else
		rm -f "$LIST"
		build
		"$DIR/ctlogs" "${ARGS[@]}" >"$RUN/logs/ctlogs.log" 2>&1 &
		echo $! >"$PIDFILE"
		for _ in $(seq 1 240); do
			[[ -f "$LIST" ]] && break
			kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { log "ctlogs exited; see $RUN/logs/ctlogs.log"; tail -n 20 "$RUN/logs/ctlogs.log" >&2; exit 1; }
			sleep 0.5
		done
		[[ -f "$LIST" ]] || { log "the logs did not come up within 2 minutes; see $RUN/logs/ctlogs.log"; exit 1; }
	fi
	echo "CERTDESK_CT_LOG_LIST=$LIST"
	;;
stop)
	if running; then
		pid=$(cat "$PIDFILE")
		kill -TERM "$pid"
		for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
	;;
env)
	running && [[ -f "$LIST" ]] || { log "the CT logs are not running (scripts/ctlogs.sh start)"; exit 1; }
	echo "CERTDESK_CT_LOG_LIST=$LIST"
	;;
*)
	echo "usage: $0 start|run|stop|env" >&2
	exit 2
	;;
esac
