#!/usr/bin/env bash
# Builds (once, then cached) the real servers the integration tests run against:
# btcd + btcctl v0.25.0, lnd + lncli v0.20.1-beta (with the invoicesrpc tag that hold invoices need),
# and Dendrite v0.13.8 (matrix-org, Apache-2.0) with cgo SQLite. Everything comes from the Go module
# proxy and is built outside kumo's go.mod, so none of their versions leak into the product module.
# Layout: $KUMO_TOOLS/<name>-<version>/bin/<binary>; a directory is only renamed into place once
# complete, so an interrupted build never leaves a half cache behind.
set -euo pipefail
TOOLS=${KUMO_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/kumo-tools}
mkdir -p "$TOOLS"
# Keep these in step with go.mod (lnrpc) and the test harnesses.
BTCD_VERSION=v0.25.0
LND_VERSION=v0.20.1-beta
LND_TAGS="signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc"
DENDRITE_VERSION=v0.13.8

exec 9>"$TOOLS/.lock"
flock 9

build_btcd() {
  local dst="$TOOLS/btcd-$BTCD_VERSION"
  [ -x "$dst/bin/btcctl" ] && return 0
  local tmp; tmp=$(mktemp -d "$TOOLS/.tmp.XXXXXX")
  GOFLAGS=-mod=mod GOBIN="$tmp/bin" go install "github.com/btcsuite/btcd@$BTCD_VERSION" "github.com/btcsuite/btcd/cmd/btcctl@$BTCD_VERSION"
  rm -rf "$dst"; mv "$tmp" "$dst"
}

build_lnd() {
  local tagkey; tagkey=$(echo "$LND_TAGS" | tr ' ' '_')
  local dst="$TOOLS/lnd-$LND_VERSION-$tagkey"
  [ -x "$dst/bin/lncli" ] && return 0
  local tmp; tmp=$(mktemp -d "$TOOLS/.tmp.XXXXXX")
  local dir; dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/lightningnetwork/lnd@$LND_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -tags="$LND_TAGS" -o "$tmp/bin/lnd" ./cmd/lnd \
     && GOFLAGS=-mod=mod go build -trimpath -tags="$LND_TAGS" -o "$tmp/bin/lncli" ./cmd/lncli)
  rm -rf "$dst"; mv "$tmp" "$dst"
}

build_dendrite() {
  local dst="$TOOLS/dendrite-$DENDRITE_VERSION"
  [ -x "$dst/bin/generate-keys" ] && return 0
  local tmp; tmp=$(mktemp -d "$TOOLS/.tmp.XXXXXX")
  CGO_ENABLED=1 GOFLAGS=-mod=mod GOBIN="$tmp/bin" go install "github.com/matrix-org/dendrite/cmd/dendrite@$DENDRITE_VERSION" "github.com/matrix-org/dendrite/cmd/generate-keys@$DENDRITE_VERSION"
  rm -rf "$dst"; mv "$tmp" "$dst"
}

# Debian's chromium drives the web platform's browser tests (chromedp).
build_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "tools: chromium is missing; install Debian's chromium package" >&2; return 1
  fi
}

want=${*:-btcd lnd dendrite chromium}
for t in $want; do
  start=$(date +%s)
  "build_$t"
  echo "tools: $t ready in $(( $(date +%s) - start ))s under $TOOLS" >&2
done
