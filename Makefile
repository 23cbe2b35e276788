# Cart CQRS — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every Go package of the workspace (go.work), by directory: `./...` at the root
# does not work in a workspace, these patterns do.
PKGS := ./pkg/... ./migrations/... ./services/command/... ./services/projector/... ./services/query/... ./scripts/... ./e2e/... ./chaos/...
MODULES := pkg migrations services/command services/projector services/query scripts e2e chaos
SERVICES := command projector query

# Development identity: `make run` signs nothing with it in production. Override
# AUTH_* to use other values; `make token` signs with the same ones.
export AUTH_HS256_SECRET ?= dev-only-secret-do-not-use-in-production
export AUTH_ISSUER ?= cart-cqrs-dev
export AUTH_AUDIENCE ?= cart-cqrs

# -vet=all runs every go vet analyzer inside go test, on the race build, so
# the packages are not compiled a second time just for vet.
GO_TEST_FLAGS ?= -race -vet=all -count=1 -timeout 9m

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: run
run: build ## Run the whole system in the foreground: migrations, command :8080, query :8081, projector :8082
	@exec bin/devrun -bin bin

.PHONY: test
test: ## Run every test (vet, gofmt, the race detector; needs PostgreSQL and Redis, see README)
	@unformatted="$$(gofmt -l $(MODULES))"; if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	go test $(GO_TEST_FLAGS) $(PKGS)

# make fuzz fuzzes every fuzz target of the workspace (go test -list '^Fuzz'
# finds them) for FUZZTIME each, one after another: go test -fuzz takes one
# package and one target per run. make test runs their seed corpora. A run
# that fails with a bare "context deadline exceeded" as FUZZTIME ends, and
# wrote no failing input, is Go 1.26's fuzz coordinator race
# (go.dev/issue/75804, fixed in Go 1.27), not a finding: it is reported and
# the next target runs.
FUZZTIME ?= 20s

.PHONY: fuzz
fuzz: ## Fuzz every Fuzz* target for FUZZTIME each (default 20s); failing inputs land in testdata/fuzz
	@set -o pipefail; go test -list '^Fuzz' $(PKGS) | awk '/^Fuzz/ { t = t " " $$1 } /^ok / { if (t != "") print $$2 t; t = "" }' | \
	while read -r pkg targets; do \
		for t in $$targets; do \
			echo "== $$pkg $$t ($(FUZZTIME))"; \
			log="$$(mktemp)"; \
			if go test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | tee "$$log"; then rm -f "$$log"; continue; fi; \
			if grep -q 'Failing input written' "$$log" || ! grep -qx '    context deadline exceeded' "$$log"; then rm -f "$$log"; exit 1; fi; \
			rm -f "$$log"; echo "warning: $$t: ignoring the fuzz coordinator's deadline race (go.dev/issue/75804); no failing input"; \
		done; \
	done

# make chaos runs the fault-injection suite (chaos/) in its full mode: the real
# service binaries, built by the suite, under load while it kills them, stops
# NATS and Redis, ends PostgreSQL sessions and breaks connections through
# toxiproxy, each fault for a minute or so; then an oracle compares the
# acknowledged commands, the event log, the stream and the read model. It
# takes a quarter of an hour or so. make test runs the same cases in their
# short mode, a few seconds each.
.PHONY: chaos
chaos: ## Fault-injection suite, full length (several minutes): kill -9, outages, toxiproxy, then the oracle
	CHAOS=full go test -race -count=1 -timeout 60m -v ./chaos/...

.PHONY: vet
vet: ## go vet every package (make test runs the same analyzers)
	go vet $(PKGS)

.PHONY: build
build: ## Build the three service binaries (and the local runner) into bin/
	@mkdir -p bin
	go build -trimpath -o bin/ ./services/command ./services/projector ./services/query ./scripts/devrun

.PHONY: token
token: ## Print a development token: make token SUB=alice [ROLE=admin]
	@go run ./scripts/token -sub "$(SUB)" $(if $(ROLE),-role "$(ROLE)")

.PHONY: demo
demo: ## Walk the article's example against a running system (make run in another terminal)
	./scripts/demo.sh

# make bench measures this machine's raw limits (pgbench doing the command's
# writes, a bare echo + Redis GET handler) and the system against them, with
# the CPU time of every process per command and the sustainable open-loop
# rate, and writes bench/REPORT.md, its plots and bench/results.json (~9 min).
# NATS runs as a nats-server child built here from scripts/go.mod's version,
# so that its CPU is measured. Tune it with BENCH_DURATION (10s per run),
# BENCH_WARMUP (2s), BENCH_CLIENTS ("1 4 16 64"), BENCH_RATES (the open-loop
# steps), BENCH_LAG_RATE (1000), BENCH_DRAIN_EVENTS (100000), BENCH_OUT
# (bench); see scripts/bench/config.go.
.PHONY: bench
bench: build ## Benchmark the system against raw PostgreSQL and Redis; writes bench/REPORT.md (BENCH_DURATION, BENCH_CLIENTS, BENCH_RATES)
	go build -trimpath -o bin/ ./scripts/loadgen ./scripts/rawread ./scripts/bench github.com/nats-io/nats-server/v2
	bin/bench

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && go mod tidy) || exit 1; done

.PHONY: nats
nats: ## Run a current NATS server with JetStream on :4222 (for machines without one)
	go run github.com/nats-io/nats-server/v2 -js -a 127.0.0.1 -p 4222 -sd $${TMPDIR:-/tmp}/cart-cqrs-nats
