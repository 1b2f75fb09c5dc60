//go:build deps

// Package deps pins the module's third-party requirements while the packages that use them are being
// written in parallel, so that concurrent edits never race on go.mod. It is never compiled.
package deps

import (
	_ "github.com/bwmarrin/discordgo"
	_ "github.com/chromedp/chromedp"
	_ "github.com/go-telegram/bot"
	_ "github.com/gorilla/websocket"
	_ "github.com/lightningnetwork/lnd/lnrpc"
	_ "github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	_ "github.com/patrickmn/go-cache"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/rivo/uniseg"
	_ "github.com/skip2/go-qrcode"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/time/rate"
	_ "google.golang.org/grpc"
	_ "gopkg.in/macaroon.v2"
	_ "maunium.net/go/mautrix"
	_ "maunium.net/go/mautrix/crypto/cryptohelper"
	_ "maunium.net/go/mautrix/synapseadmin"
)
