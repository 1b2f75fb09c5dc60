package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning/lnd"
	"github.com/kumo-chat/kumo/platforms/discord"
	"github.com/kumo-chat/kumo/platforms/matrix"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/web"
)

// config is kumo's YAML file. Each part's own Config is decoded as it is; a section that is absent
// (nil) disables that platform.
type config struct {
	Rooms     bridge.Config    `yaml:"rooms"`
	Lightning lightningConfig  `yaml:"lightning"`
	Telegram  *telegram.Config `yaml:"telegram"`
	Discord   *discord.Config  `yaml:"discord"`
	Matrix    *matrix.Config   `yaml:"matrix"`
	Web       *web.Config      `yaml:"web"`
	HTTP      httpConfig       `yaml:"http"`
	Log       logConfig        `yaml:"log"`
}

type lightningConfig struct {
	// Backend is "lnd" or "dev" (the development backend: no real money).
	Backend string      `yaml:"backend"`
	LND     *lnd.Config `yaml:"lnd"`
}

type httpConfig struct {
	// Listen is where /healthz, /metrics and the web chat (if enabled) are served.
	Listen string `yaml:"listen"`
	// TrustedProxies lists the reverse proxies (IPs or CIDR prefixes) whose X-Forwarded-For is
	// believed; from anyone else it is ignored. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MetricsListen, when set, serves /metrics there instead of on Listen (e.g. 127.0.0.1:9090).
	MetricsListen string `yaml:"metrics_listen"`
}

type logConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

const defaultListen = "127.0.0.1:8080"

// defaults is what kumo runs with when there is no configuration at all: the whole product on one
// machine — the web chat and the development payment backend.
func defaults() config {
	c := config{Rooms: bridge.DefaultConfig()}
	c.Lightning.Backend = "dev"
	c.Web = &web.Config{Enabled: true}
	c.HTTP.Listen = defaultListen
	c.Log = logConfig{Level: "info", Format: "text"}
	return c
}

// loadConfig decodes YAML strictly over the defaults (minus the web platform, which a config file
// has to ask for), applies environment overrides and validates.
func loadConfig(r io.Reader, getenv func(string) string) (config, error) {
	c := defaults()
	c.Web = nil
	data, err := io.ReadAll(r)
	if err != nil {
		return config{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return config{}, explainYAML(err)
	}
	c.env(getenv)
	c.defaultLNDInstance(getenv)
	if err := c.validate(); err != nil {
		return config{}, err
	}
	return c, nil
}

// env lets secrets come from the environment rather than the file. A token in the environment also
// enables Telegram or Discord, which need nothing else.
func (c *config) env(getenv func(string) string) {
	if v := getenv("KUMO_TELEGRAM_TOKEN"); v != "" {
		if c.Telegram == nil {
			c.Telegram = &telegram.Config{}
		}
		c.Telegram.Token = v
	}
	if v := getenv("KUMO_DISCORD_TOKEN"); v != "" {
		if c.Discord == nil {
			c.Discord = &discord.Config{}
		}
		c.Discord.Token = v
	}
	if c.Matrix != nil {
		if v := getenv("KUMO_MATRIX_ACCESS_TOKEN"); v != "" {
			c.Matrix.AccessToken = v
		}
		if v := getenv("KUMO_MATRIX_PASSWORD"); v != "" {
			c.Matrix.Password = v
		}
	}
	if c.Lightning.LND != nil {
		if v := getenv("KUMO_LND_MACAROON"); v != "" {
			c.Lightning.LND.Macaroon = v
		}
		// Not a secret, but what tells apart several deployments run from one config file.
		if v := getenv("KUMO_LND_INSTANCE"); v != "" {
			c.Lightning.LND.Instance = v
		}
	}
}

// defaultLNDInstance fills an unset lightning.lnd.instance from who this deployment is to its
// users: its bots and, for the web chat, where it is served. That stays the same across restarts
// and differs between deployments (two cannot share a bot), so every kumo on a shared lnd node
// cancels only its own leftovers. Only public parts go in: a Telegram token's bot id (before ':')
// and a Discord token's first part (the bot's id, base64), never the secret rest.
func (c *config) defaultLNDInstance(getenv func(string) string) {
	if c.Lightning.LND == nil || c.Lightning.LND.Instance != "" {
		return
	}
	var ids []string
	if c.Telegram != nil {
		if id, _, ok := strings.Cut(c.Telegram.Token, ":"); ok {
			ids = append(ids, "telegram:"+id)
		}
	}
	if c.Discord != nil {
		if id, _, ok := strings.Cut(c.Discord.Token, "."); ok {
			ids = append(ids, "discord:"+id)
		}
	}
	if c.Matrix != nil {
		ids = append(ids, "matrix:"+c.Matrix.UserID)
	}
	if c.webEnabled() {
		listen := c.HTTP.Listen
		if v := getenv("KUMO_HTTP_LISTEN"); v != "" {
			listen = v // main applies it after loading: the tag must follow the address really served
		}
		ids = append(ids, "web:"+listen)
	}
	c.Lightning.LND.Instance = lnd.DefaultInstance(ids...)
}

// validate reports every value that cannot work, each with its key and what to do.
func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Rooms.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Lightning.Backend {
	case "dev":
	case "lnd":
		if c.Lightning.LND == nil || c.Lightning.LND.Address == "" || c.Lightning.LND.TLSCert == "" || c.Lightning.LND.Macaroon == "" {
			bad("lightning.backend is lnd: set lightning.lnd.address (host:port of lnd's gRPC), lightning.lnd.tls_cert and lightning.lnd.macaroon (paths)")
		} else if err := c.Lightning.LND.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		bad("lightning.backend must be lnd or dev, got %q", c.Lightning.Backend)
	}
	if c.Telegram != nil && c.Telegram.Token == "" {
		bad("telegram.token is empty: set it (from @BotFather) or KUMO_TELEGRAM_TOKEN, or remove the telegram section")
	}
	if c.Discord != nil && c.Discord.Token == "" {
		bad("discord.token is empty: set it (from the developer portal) or KUMO_DISCORD_TOKEN, or remove the discord section")
	}
	if m := c.Matrix; m != nil {
		if m.Homeserver == "" || m.UserID == "" {
			bad("matrix.homeserver and matrix.user_id are both needed (e.g. https://matrix.example.org and @kumo:example.org)")
		}
		if m.AccessToken == "" && m.Password == "" {
			bad("matrix needs matrix.access_token or matrix.password (or KUMO_MATRIX_ACCESS_TOKEN / KUMO_MATRIX_PASSWORD)")
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen must be host:port, got %q", c.HTTP.Listen)
	}
	if _, err := web.ParseTrustedProxies(c.HTTP.TrustedProxies); err != nil {
		bad("http.trusted_proxies: %v", err)
	}
	if m := c.HTTP.MetricsListen; m != "" {
		if _, _, err := net.SplitHostPort(m); err != nil {
			bad("http.metrics_listen must be host:port, got %q", m)
		} else if _, port, _ := net.SplitHostPort(m); m == c.HTTP.Listen && port != "0" {
			bad("http.metrics_listen is http.listen (%s): leave it empty to serve /metrics there", m)
		}
	}
	if c.webEnabled() {
		if err := c.Web.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format must be text or json, got %q", c.Log.Format)
	}
	if c.Telegram == nil && c.Discord == nil && c.Matrix == nil && !c.webEnabled() {
		bad("no platform is configured: add a telegram, discord or matrix section, or web.enabled: true")
	}
	return errors.Join(errs...)
}

func (c *config) webEnabled() bool { return c.Web != nil && c.Web.Enabled }

// Sections by the Go types yaml.v3 names in its errors.
var yamlTypeSection = map[string]string{
	"main.config": "the top level", "bridge.Config": "rooms", "rooms.Config": "rooms",
	"main.lightningConfig": "lightning", "lnd.Config": "lightning.lnd", "telegram.Config": "telegram",
	"discord.Config": "discord", "matrix.Config": "matrix", "web.Config": "web", "main.httpConfig": "http",
	"main.logConfig": "log",
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type (\S+)`)

// explainYAML rewords yaml.v3's errors for operators: "unknown key rooms.lifetme (line 3)".
func explainYAML(err error) error {
	msg := unknownField.ReplaceAllStringFunc(err.Error(), func(m string) string {
		p := unknownField.FindStringSubmatch(m)
		section := yamlTypeSection[p[3]]
		key := p[2]
		if section != "" && section != "the top level" {
			key = section + "." + key
		}
		return fmt.Sprintf("unknown key %q on line %s (check its spelling against config.example.yaml)", key, p[1])
	})
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	return fmt.Errorf("config: %s", msg)
}

// openConfig finds the configuration: -config FILE, else ./config.yaml if present, else none.
func openConfig(path string, explicit bool) (io.ReadCloser, string, error) {
	f, err := os.Open(path)
	if err == nil {
		return f, path, nil
	}
	if !explicit && errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	return nil, "", fmt.Errorf("config: %w", err)
}
