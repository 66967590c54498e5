# CertDesk. `make run` starts the whole stack on this machine; `make test`
# runs vet, unit tests and integration tests against real services.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI_VERSION := v1.5.1
GOTEST_FLAGS ?= -p 2 -timeout 30m

.PHONY: all build tools run migrate test unit vet record-histories compose-check bench clean

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

tools: $(BIN)/temporal tools/maildev/node_modules/.package-lock.json

run: tools build
	bash scripts/run.sh

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

test: tools vet compose-check
	$(GO) test $(GOTEST_FLAGS) -tags integration ./...

# Re-record the workflow histories the replay test checks (after an
# intended, versioned change to a workflow).
record-histories: tools
	RECORD_HISTORIES=1 $(GO) test -tags integration -run 'Lifecycle|MassRevocation100k|DVIssuance|DisclosureOnRealStack|CorrectionOnRealStack|PolicyNoticeOnRealStack' -count=1 ./workflows

bench: tools
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

clean:
	rm -rf $(BIN) .run
