# The front door: make run, make test, make bench, make lint.
GO      ?= go
CONFIG  ?= configs/examples/unwind-btc.yaml
RUNDIR  ?= ./data/example
STATICCHECK_VERSION ?= 2025.1.1

.PHONY: run test test-short bench lint build fuzz clean chromium

build:
	$(GO) build -o bin/blockexec ./cmd/blockexec

## run: sell the example block on the embedded default (virtual clock, sim venues,
## embedded NATS, SQLite ledger under $(RUNDIR), wiped first), then print the report.
run: build
	rm -rf $(RUNDIR)
	./bin/blockexec run -c $(CONFIG) --data-dir $(RUNDIR) --report-json $(RUNDIR)/report.json

## chromium: Debian's headless browser for the dashboard's end-to-end test
## (cmd/blockexec/dashboard_test.go); installed only when missing and
## BLOCKEXEC_CHROMIUM names no other.
chromium:
	@test -n "$$BLOCKEXEC_CHROMIUM" || test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

## test: vet, then every test with the race detector; -parallel 4 because the
## crash tests mostly wait on the wall clock (each runs blockexec for seconds).
test: chromium
	$(GO) vet ./...
	$(GO) test -race -count=1 -parallel 4 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./configs/

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && echo "gofmt: files above need formatting" && exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin data
