# EnrollQ — developer and CI entry points. See docs/OPERATIONS.md.
#
#   make up / down / status   local services (MariaDB primary+replica, Redis, OpenSearch, nginx)
#   make build                go build -o bin/ ./cmd/...
#   make run                  services + migrate + fixtures + api×2 + queue-ws×2, prints the URL
#   make stop                 stop the app processes started by `make run` (services keep running)
#   make test                 `make up`, then gofmt, go vet, import rules and go test -race
#   make bench                benchmarks against the real services (not pass/fail)
#   make fmt / vet

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Go toolchain from the usual place wins over an older distribution go;
# never download another toolchain (machines have no general network access).
export PATH := /usr/local/go/bin:$(PATH):/usr/sbin:/sbin
export GOTOOLCHAIN ?= local
export GOFLAGS ?= -buildvcs=false

GO       ?= go
BENCH    ?= .
BENCHTIME ?= 1s
COUNT    ?= 1

.PHONY: help up down status restart build run stop test bench fmt vet

help:
	@sed -n '2,10p' Makefile | sed 's/^# \{0,1\}//'

up:
	bash scripts/services.sh up

down:
	bash scripts/services.sh down

status:
	bash scripts/services.sh status

restart:
	bash scripts/services.sh restart

build:
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/...

run:
	bash scripts/run.sh

stop:
	bash scripts/run.sh stop

test: up
	bash scripts/test.sh

bench: up
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./...

fmt:
	gofmt -w .

vet:
	$(GO) vet ./...

# Load tests (docs/BENCHMARKS.md); both run against `make run`'s stack.
#   make loadgen [STUDENTS=100000] [LOADGEN_ARGS='-ws-share 0.5 ...']
#       cmd/loadgen: N students burst through nginx, every law verified after;
#       -reset empties the term's registrations first (catalog and roster stay).
#   make jmeter [PLAN=enroll-burst|ws-watch] [USERS=100] [JMETER_ARGS='--ramp 5 ...']
#       scripts/jmeter.sh: a JMeter plan headless, with its HTML dashboard.
STUDENTS ?= 100000
PLAN     ?= enroll-burst
USERS    ?= 100

.PHONY: loadgen jmeter
loadgen:
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/loadgen
	bin/loadgen -students $(STUDENTS) -reset $(LOADGEN_ARGS) >/dev/null # the JSON report is in out/loadgen/<time>/

jmeter:
	scripts/jmeter.sh $(PLAN) --users $(USERS) $(JMETER_ARGS)
