# The README's two commands: `go run -tags goolm ./cmd/kumo` runs kumo; `make test` runs every test.
GO ?= go
TAGS := goolm
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test tools check build bench

# tools builds (once, cached under ~/.cache/kumo-tools) the real servers the tests run against:
# btcd, lnd, Dendrite, and installs Debian's chromium.
tools:
	.ci/tools.sh

check:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet -tags $(TAGS) ./...
	$(GO) run $(STATICCHECK) -tags $(TAGS) ./...

test: tools check
	$(GO) test -tags $(TAGS) -race -timeout 30m ./...

build:
	CGO_ENABLED=0 $(GO) build -tags $(TAGS) -trimpath -ldflags='-s -w' -o kumo ./cmd/kumo

bench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem ./bridge/ ./rooms/
