# CertDesk. `make run` starts the whole stack on this machine; `make test`
# runs vet, unit tests and integration tests against real services.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1
GOTEST_FLAGS ?= -p 2 -timeout 30m

.PHONY: all build tools run migrate test unit vet record-histories compose-check bench bench-go clean
.PHONY: temporal-server temporal-ui fuzz chaos chaos-short deps

all: build

build: $(BIN)/worker $(BIN)/starter

$(BIN)/worker: FORCE
	$(GO) build -o $@ ./worker
$(BIN)/starter: FORCE
	$(GO) build -o $@ ./starter
FORCE:

# The Temporal CLI (dev server + Web UI) is built once from its Go module at
# a pinned version and reused; ./bin is not committed.
$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# MailDev 2.2.1, pinned by tools/maildev/package-lock.json.
tools/maildev/node_modules/.package-lock.json: tools/maildev/package-lock.json
	npm ci --prefix tools/maildev --no-audit --no-fund --loglevel=error
	touch $@

# Redocly CLI 2.77.0 (lints the served OpenAPI document), pinned by
# tools/redocly/package-lock.json.
tools/redocly/node_modules/.package-lock.json: tools/redocly/package-lock.json
	npm ci --prefix tools/redocly --no-audit --no-fund --loglevel=error
	touch $@

# acme-client 5.4.0 (npm), the dns-01 and ARI client of the ACME tests
# (tools/acme-client/issue.js), pinned by tools/acme-client/package-lock.json.
tools/acme-client/node_modules/.package-lock.json: tools/acme-client/package-lock.json
	npm ci --prefix tools/acme-client --no-audit --no-fund --loglevel=error
	touch $@

# TesseraCT v0.1.1 with its POSIX backend: the local CT logs (tools/tesseract).
$(BIN)/tesseract-posix: tools/tesseract/go.mod tools/tesseract/go.sum
	cd tools/tesseract && $(GO) build -trimpath -o $@ github.com/transparency-dev/tesseract/cmd/tesseract/posix

# certificate-transparency-go v1.3.2's sctcheck: checks a certificate's
# embedded SCTs against the log list's keys, as a relying party would.
$(BIN)/sctcheck: tools/sctcheck/go.mod tools/sctcheck/go.sum
	cd tools/sctcheck && $(GO) build -trimpath -o $@ github.com/google/certificate-transparency-go/ctutil/sctcheck

# Pebble v2.10.3, the ACME test server the conformance test runs the same
# clients against (tools/pebble; TestConformance, PEBBLE_BIN overrides it).
$(BIN)/pebble: tools/pebble/go.mod tools/pebble/go.sum
	cd tools/pebble && $(GO) build -trimpath -o $@ github.com/letsencrypt/pebble/v2/cmd/pebble

tools: $(BIN)/sctcheck $(BIN)/pebble $(BIN)/temporal tools/maildev/node_modules/.package-lock.json tools/redocly/node_modules/.package-lock.json tools/acme-client/node_modules/.package-lock.json $(BIN)/tesseract-posix

# The reseller contract: redocly lint of the OpenAPI document, and the Go
# client generated from it (oapi-codegen, pinned in tools/oapi-codegen).
.PHONY: openapi-lint generate
openapi-lint: tools/redocly/node_modules/.package-lock.json
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true tools/redocly/node_modules/.bin/redocly lint --config tools/redocly/redocly.yaml starter/httpapi/openapi.yaml
generate:
	$(GO) generate ./starter/httpapi/apiclient

# TEMPORAL=postgres: the standalone Temporal server v1.29.1 on PostgreSQL
# (scripts/temporal-postgres.sh) instead of the dev server on SQLite.
RUN_TOOLS := tools
ifeq ($(TEMPORAL),postgres)
RUN_TOOLS += temporal-server temporal-ui
endif
run: deps $(RUN_TOOLS) build
	TEMPORAL=$(TEMPORAL) bash scripts/run.sh

migrate: $(BIN)/starter
	$(BIN)/starter migrate

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

unit:
	$(GO) test $(GOTEST_FLAGS) ./...

compose-check:
	@if command -v docker-compose >/dev/null 2>&1; then \
		CERTDESK_PII_KEYS=placeholder CERTDESK_BLIND_INDEX_KEY=placeholder CERTDESK_CODEC_KEY=placeholder \
		CERTDESK_CA_PASSPHRASE=placeholder CERTDESK_STAFF_TOKEN=placeholder \
		docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"; \
	else echo "docker-compose not installed: skipping compose validation (apt-get install docker-compose)"; fi

# The machine packages the tests and the stack use (SoftHSM2, openssl,
# docker-compose, the PostgreSQL client and server, the DNS and ACME tools),
# installed when missing and possible (root, apt-get), and the machine's
# PostgreSQL started when it is down; quiet when all is there.
deps:
	@bash scripts/deps.sh

# The go tests, then the short chaos run (50 cases, one fault of each kind;
# see chaos/main.go) on the standalone Temporal server.
test: deps tools vet compose-check temporal-server build
	$(GO) test $(GOTEST_FLAGS) -tags integration ./...
	$(GO) run ./chaos -short

# Re-record the workflow histories the replay test checks (after an
# intended, versioned change to a workflow).
record-histories: tools
	RECORD_HISTORIES=1 $(GO) test -tags integration -run 'Lifecycle|MassRevocation100k|DVIssuance|DisclosureOnRealStack|CorrectionOnRealStack|PolicyNoticeOnRealStack' -count=1 ./workflows
	RECORD_HISTORIES=1 $(GO) test -tags integration -run 'CertbotOnWorkflows|OVOrderOnWorkflows' -count=1 ./starter/acmeorders

# make bench: the DESIGN performance scenarios on this machine, one table
# (bench/), also written as JSON to bench/results/. BENCH_SCENARIOS picks
# scenarios (e.g. "crl,ocsp"; dv,mass,crl,ocsp,mail,acme), BENCH_MASS_N the mass-revocation size,
# BENCH_DV_N the number of DV applications, CERTDESK_BENCH_TEMPORAL=dev|postgres
# the Temporal server (postgres: the standalone server on PostgreSQL).
BENCH_MASS_N ?= 1000000
CERTDESK_BENCH_TEMPORAL ?= postgres
BENCH_TOOLS := tools
ifeq ($(CERTDESK_BENCH_TEMPORAL),postgres)
BENCH_TOOLS += temporal-server
endif
bench: $(BENCH_TOOLS) build bench-wrk
	BENCH_MASS_N=$(BENCH_MASS_N) CERTDESK_BENCH_TEMPORAL=$(CERTDESK_BENCH_TEMPORAL) \
		$(GO) run ./bench $(BENCH_FLAGS)

# wrk (Debian package wrk) is the OCSP scenario's load generator, a C
# program that leaves the CPU to the starter; installed here when missing
# and possible (root, apt-get), else the scenario falls back to Go's HTTP
# client and its row says so.
.PHONY: bench-wrk
bench-wrk:
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || \
		{ export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; } >/dev/null 2>&1 || true
	@command -v wrk >/dev/null 2>&1 || echo "bench: wrk is not installed (apt-get install wrk): the OCSP scenario uses Go's HTTP client instead"

# The packages' own Go benchmarks (what `make bench` ran before bench/).
bench-go: tools
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# The standalone Temporal server and temporal-sql-tool at the version pinned
# by tools/temporal-server/go.mod (about 10 minutes cold), and the Temporal
# Web UI server pinned by tools/temporal-ui/go.mod; ./bin is not committed.
TEMPORAL_SERVER_BINS := $(BIN)/temporal-server $(BIN)/temporal-sql-tool
temporal-server: $(TEMPORAL_SERVER_BINS)
$(TEMPORAL_SERVER_BINS) &: tools/temporal-server/go.mod tools/temporal-server/go.sum
	cd tools/temporal-server && $(GO) build -trimpath -o $(BIN)/temporal-server go.temporal.io/server/cmd/server
	cd tools/temporal-server && $(GO) build -trimpath -o $(BIN)/temporal-sql-tool go.temporal.io/server/cmd/tools/sql
temporal-ui: $(BIN)/temporal-ui
$(BIN)/temporal-ui: tools/temporal-ui/go.mod tools/temporal-ui/go.sum tools/temporal-ui/main.go
	cd tools/temporal-ui && $(GO) build -trimpath -o $@ .

# make fuzz: every fuzz target for FUZZTIME each (seed corpora in each
# package's testdata/fuzz/), one at a time: the machine has two cores.
FUZZTIME ?= 30s
FUZZ_PARALLEL ?= 1
FUZZ_TARGETS := ./internal/pki:FuzzParseCSR ./internal/pki:FuzzCheckCSR ./internal/pki:FuzzOCSPRequest \
	./internal/codec:FuzzDecode ./internal/codec:FuzzRoundTrip ./internal/api:FuzzDecodeJSON \
	./starter/httpapi:FuzzApplicationRequest
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZ_PARALLEL) $$pkg; \
	done

# make chaos: 500 mixed cases on the PostgreSQL-backed stack while the
# worker is killed -9 every few seconds, Temporal and a private PostgreSQL
# are restarted once and MailDev is down for two minutes; then invariants.
# chaos-short: 50 cases, one fault of each kind.
chaos: tools temporal-server build
	$(GO) run ./chaos -cases 500 $(CHAOS_FLAGS)
chaos-short: tools temporal-server build
	$(GO) run ./chaos -short $(CHAOS_FLAGS)

clean:
	rm -rf $(BIN) .run
