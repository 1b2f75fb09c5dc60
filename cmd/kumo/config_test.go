package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func load(t *testing.T, yaml string, environ map[string]string, flags map[string]string) (*config, error) {
	t.Helper()
	var r *strings.Reader
	source := ""
	if yaml != "-" {
		r, source = strings.NewReader(yaml), "kumo.yaml"
	}
	if r == nil {
		return loadConfig(nil, "", env(environ), flags)
	}
	return loadConfig(r, source, env(environ), flags)
}

func onNames(c *config) string {
	var out []string
	for _, r := range c.on {
		out = append(out, r.name)
	}
	return strings.Join(out, ",")
}

// config.example.yaml starts as it is (the web chat on simulated payments), and with every
// commented-out setting uncommented it is a full configuration.
func TestConfigExample(t *testing.T) {
	b, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := load(t, string(b), nil, nil)
	if err != nil {
		t.Fatalf("config.example.yaml as it is: %v", err)
	}
	if onNames(c) != "web" || c.backend == nil || c.backend.name != "dev" || !c.devDefault {
		t.Fatalf("as it is: platforms %q, backend %+v", onNames(c), c.backend)
	}

	full := regexp.MustCompile(`(?m)^# `).ReplaceAllString(string(b), "")
	c, err = load(t, full, map[string]string{"KUMO_TELEGRAM_TOKEN": "1:x", "KUMO_DISCORD_TOKEN": "d", "KUMO_MATRIX_PASSWORD": "p"}, nil)
	if err != nil {
		t.Fatalf("uncommented: %v", err)
	}
	if c.Rooms.PriceSat != 10000 || c.Rooms.Rooms.Lifetime != 24*time.Hour || c.Rooms.InvoiceExpiry != 15*time.Minute || c.Rooms.Rooms.MaxMembers != 50 {
		t.Fatalf("rooms: %+v", c.Rooms)
	}
	if c.backend.name != "lnd" || c.backendCfg["lnd"].Elem().FieldByName("Address").String() != "127.0.0.1:10009" {
		t.Fatalf("lightning: %+v", c.Lightning)
	}
	if got := onNames(c); got != "telegram,discord,matrix,web" {
		t.Fatalf("platforms: %s", got)
	}
	if c.platformCfg["telegram"].Elem().FieldByName("Token").String() != "1:x" || c.platformCfg["matrix"].Elem().FieldByName("Password").String() != "p" {
		t.Fatal("environment overrides not applied")
	}
}

// The exact report for each bad configuration: every problem at once, each naming its key, where it
// was set, what it takes and an example.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unknown key", "rooms:\n  lifetme: 1h\n",
			nil, `kumo.yaml: unknown key "rooms.lifetme" on line 2 (did you mean "rooms.lifetime"?)`},
		{"unknown section", "telegramm:\n  token: x\n",
			nil, `kumo.yaml: unknown key "telegramm" on line 1 (did you mean "telegram"?)`},
		{"unknown key far from any", "rooms:\n  colour: blue\n",
			nil, `kumo.yaml: unknown key "rooms.colour" on line 2 (check its spelling against config.example.yaml)`},
		{"wrong type", "rooms:\n  price_sat: ten thousand\n",
			nil, `kumo.yaml: rooms.price_sat (line 2): want a whole number of satoshis, e.g. 10000, got "ten thousand"`},
		{"bad duration", "rooms:\n  lifetime: forever\n",
			nil, `kumo.yaml: rooms.lifetime (line 2): want a duration, e.g. 24h, got "forever"`},
		{"zero lifetime", "rooms:\n  lifetime: 0s\n",
			nil, `kumo.yaml: rooms.lifetime (line 2): want a duration above 0, e.g. 24h, got "0s"`},
		{"empty value", "rooms:\n  price_sat:\n",
			nil, `kumo.yaml: rooms.price_sat (line 2): want a whole number of satoshis, e.g. 10000, got nothing`},
		{"warning after the end", "rooms:\n  warnings: [48h]\n",
			nil, `kumo.yaml: rooms.warnings (line 2): 48h is not before the end of a 24h room; each warning must be shorter than rooms.lifetime, e.g. [1h, 5m]`},
		{"every bad rooms value", "rooms:\n  price_sat: -5\n  max_members: -3\n",
			nil, "kumo.yaml: 2 problems:\n" +
				"  rooms.price_sat (line 2) must be 0 (free) or more, e.g. 10000, got -5\n" +
				"  rooms.max_members (line 3) must be between 2 and 500, got -3"},
		{"several bad values at once", "rooms:\n  lifetime: 10ms\n  price_sat: lots\nlightning:\n  backend: btcpay\nhttp:\n  listen: nowhere\ntelegram: {}\nlog:\n  level: loud\n",
			nil, "kumo.yaml: 6 problems:\n" +
				`  rooms.price_sat (line 3): want a whole number of satoshis, e.g. 10000, got "lots"` + "\n" +
				"  rooms.lifetime (line 2) must be at least 1s, e.g. 24h, got 10ms\n" +
				"  telegram.token is empty: set it to the token @BotFather gave you (or KUMO_TELEGRAM_TOKEN), or remove the telegram section\n" +
				`  lightning.backend (line 5): want one of dev, lnd, got "btcpay"` + "\n" +
				`  http.listen (line 7): want host:port, e.g. 127.0.0.1:8080, got "nowhere"` + "\n" +
				`  log.level (line 10): want debug, info, warn or error, got "loud"`},
		{"lnd missing only its address", "lightning:\n  backend: lnd\n  lnd:\n    tls_cert: /x\n    macaroon: /y\nweb: {enabled: true}\n",
			nil, "kumo.yaml: lightning.lnd.address is empty: set it to host:port of lnd's gRPC, e.g. 127.0.0.1:10009"},
		{"telegram without a payment backend", "telegram:\n  token: '1:x'\n",
			nil, "kumo.yaml: lightning.backend is not set, and rooms cost 10000 sat on telegram: set lightning.backend: lnd and lightning.lnd.address, lightning.lnd.tls_cert and lightning.lnd.macaroon for real payments (see config.example.yaml); or lightning.backend: dev for simulated ones (no real money; paid only from the web chat); or rooms.price_sat: 0 for free rooms"},
		{"public web chat on the default backend", "http:\n  listen: 0.0.0.0:8080\n",
			nil, "kumo.yaml: http.listen (line 2) is 0.0.0.0:8080, reachable from other machines, and no payment backend is chosen: the web chat would give rooms away with simulated payments. To run a public demo on purpose, set lightning.backend: dev (or KUMO_LIGHTNING_BACKEND=dev); for real payments set lightning.backend: lnd (see config.example.yaml); or listen on 127.0.0.1"},
		{"matrix needs its keys", "matrix:\n  homeserver: matrix.example.org\nrooms: {price_sat: 0}\n",
			nil, "kumo.yaml: 3 problems:\n" +
				`  matrix.homeserver (line 2) must be the homeserver's http(s) URL, e.g. https://matrix.example.org, got "matrix.example.org"` + "\n" +
				`  matrix.user_id must be the bot's full Matrix ID, e.g. @kumo:example.org, got ""` + "\n" +
				"  matrix.password or matrix.access_token is needed (or KUMO_MATRIX_PASSWORD / KUMO_MATRIX_ACCESS_TOKEN)"},
		{"a bad value from the environment", "web: {enabled: true}\n",
			map[string]string{"KUMO_ROOMS_MAX_MEMBERS": "many"}, `kumo.yaml: rooms.max_members (KUMO_ROOMS_MAX_MEMBERS): want a whole number, e.g. 50, got "many"`},
		{"nothing to run", "web: {enabled: false}\n",
			nil, "kumo.yaml: no platform is configured: add a telegram, discord or matrix section (or set KUMO_TELEGRAM_TOKEN, KUMO_DISCORD_TOKEN...), or web.enabled: true for the web chat"},
		{"bad edge keys", "web: {enabled: true, public_url: chat.example.org, max_connections_per_ip: -1, max_connections: -5}\n" +
			"http: {listen: '127.0.0.1:8080', trusted_proxies: [proxy.lan], metrics_listen: '127.0.0.1:8080'}\n",
			nil, "kumo.yaml: 5 problems:\n" +
				"  web.max_connections_per_ip (line 1) must be positive (or 0 for the default 20), got -1\n" +
				"  web.max_connections (line 1) must be positive (or 0 for the default 10000), got -5\n" +
				`  web.public_url (line 1): "chat.example.org" is not an origin like https://chat.example.org` + "\n" +
				`  http.trusted_proxies (line 2): "proxy.lan" is neither an IP address nor a CIDR prefix like 10.0.0.0/8` + "\n" +
				"  http.metrics_listen (line 2) is http.listen (127.0.0.1:8080): leave it empty to serve /metrics there"},
		{"metrics_listen not an address", "web: {enabled: true}\nhttp: {metrics_listen: nowhere}\n",
			nil, `kumo.yaml: http.metrics_listen (line 2): want host:port, e.g. 127.0.0.1:9090, got "nowhere"`},
		{"a section that is not a mapping", "rooms: 5\n",
			nil, `kumo.yaml: rooms (line 1): want a section of keys, e.g. rooms: {price_sat: ...}, got "5"`},
		{"media memory below one file", "rooms: {max_media_bytes: 10485760, media_memory: 1048576}\nweb: {enabled: true}\n",
			nil, "kumo.yaml: rooms.media_memory (line 1) must be at least rooms.max_media_bytes (10485760), so that one file fits, got 1048576"},
		{"no media size", "rooms: {max_media_bytes: -1}\nweb: {enabled: true}\n",
			nil, "kumo.yaml: rooms.max_media_bytes (line 1) must be at least 1, e.g. 20971520 (20 MiB), got -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml, c.env, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", err, c.want)
			}
		})
	}
}

// File, environment and flags set the same keys the same way, with or without a file; later wins.
func TestConfigSources(t *testing.T) {
	cases := []struct {
		name, yaml  string // "-" is no file
		env, flags  map[string]string
		platforms   string
		backend     string // "" for none
		devDefault  bool
		listen      string
		lifetime    time.Duration
		telegramTok string
	}{
		{name: "nothing: the web chat on simulated payments", yaml: "-",
			platforms: "web", backend: "dev", devDefault: true, listen: defaultListen, lifetime: 24 * time.Hour},
		{name: "an empty file is the same as none", yaml: "",
			platforms: "web", backend: "dev", devDefault: true, listen: defaultListen, lifetime: 24 * time.Hour},
		{name: "a token alone turns telegram on, without a file", yaml: "-",
			env:       map[string]string{"KUMO_TELEGRAM_TOKEN": "1:x", "KUMO_ROOMS_PRICE_SAT": "0"},
			platforms: "telegram", listen: defaultListen, lifetime: 24 * time.Hour, telegramTok: "1:x"},
		{name: "a token alone turns telegram on, with a file", yaml: "rooms: {price_sat: 0}\n",
			env:       map[string]string{"KUMO_TELEGRAM_TOKEN": "1:x"},
			platforms: "telegram", listen: defaultListen, lifetime: 24 * time.Hour, telegramTok: "1:x"},
		{name: "environment over file, flag over environment", yaml: "rooms:\n  lifetime: 1h\nhttp:\n  listen: 127.0.0.1:1\n",
			env:       map[string]string{"KUMO_ROOMS_LIFETIME": "2h", "KUMO_HTTP_LISTEN": "127.0.0.1:2"},
			flags:     map[string]string{"http.listen": "127.0.0.1:3"},
			platforms: "web", backend: "dev", devDefault: true, listen: "127.0.0.1:3", lifetime: 2 * time.Hour},
		{name: "a flag alone works without a file", yaml: "-",
			flags:     map[string]string{"rooms.lifetime": "30m"},
			platforms: "web", backend: "dev", devDefault: true, listen: defaultListen, lifetime: 30 * time.Minute},
		{name: "dev chosen explicitly may be public", yaml: "-",
			env:       map[string]string{"KUMO_LIGHTNING_BACKEND": "dev", "KUMO_HTTP_LISTEN": ":8080"},
			platforms: "web", backend: "dev", listen: ":8080", lifetime: 24 * time.Hour},
		{name: "dev chosen explicitly works for telegram", yaml: "lightning: {backend: dev}\ntelegram: {token: '1:x'}\n",
			platforms: "telegram", backend: "dev", listen: defaultListen, lifetime: 24 * time.Hour, telegramTok: "1:x"},
		{name: "the web chat beside telegram", yaml: "lightning: {backend: dev}\nweb: {enabled: true}\n",
			env:       map[string]string{"KUMO_TELEGRAM_TOKEN": "1:x"},
			platforms: "telegram,web", backend: "dev", listen: defaultListen, lifetime: 24 * time.Hour, telegramTok: "1:x"},
		{name: "an lnd section chooses lnd", yaml: "lightning:\n  lnd: {address: 'h:1', tls_cert: /c}\nweb: {enabled: true}\n",
			env:       map[string]string{"KUMO_LND_MACAROON": "/m"},
			platforms: "web", backend: "lnd", listen: defaultListen, lifetime: 24 * time.Hour},
		{name: "the edge keys", yaml: "web: {enabled: true, public_url: 'https://chat.example.org', max_connections_per_ip: 5, max_connections: 500}\n" +
			"http: {trusted_proxies: [10.0.0.1, 'fd00::/8'], metrics_listen: '127.0.0.1:9090'}\n",
			platforms: "web", backend: "dev", devDefault: true, listen: defaultListen, lifetime: 24 * time.Hour},
		{name: "the media keys", yaml: "rooms: {max_media_bytes: 10485760, media_memory: 104857600}\nweb: {enabled: true}\n",
			platforms: "web", backend: "dev", devDefault: true, listen: defaultListen, lifetime: 24 * time.Hour},
		{name: "a token keeps what YAML would read differently", yaml: "-",
			env:       map[string]string{"KUMO_TELEGRAM_TOKEN": "#12: x", "KUMO_ROOMS_PRICE_SAT": "0"},
			platforms: "telegram", listen: defaultListen, lifetime: 24 * time.Hour, telegramTok: "#12: x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.yaml, tc.env, tc.flags)
			if err != nil {
				t.Fatal(err)
			}
			backend := ""
			if c.backend != nil {
				backend = c.backend.name
			}
			tok := c.platformCfg["telegram"].Elem().FieldByName("Token").String()
			if got := onNames(c); got != tc.platforms || backend != tc.backend || c.devDefault != tc.devDefault ||
				c.HTTP.Listen != tc.listen || c.Rooms.Rooms.Lifetime != tc.lifetime || tok != tc.telegramTok {
				t.Errorf("got platforms %q backend %q (default %v) listen %q lifetime %s token %q", got, backend, c.devDefault, c.HTTP.Listen, c.Rooms.Rooms.Lifetime, tok)
			}
		})
	}
}

// lndSection is a valid lnd configuration (with the web chat as platform), with instance if set.
func lndSection(instance string) string {
	y := "web: {enabled: true}\nlightning:\n  backend: lnd\n  lnd:\n    address: 127.0.0.1:10009\n    tls_cert: c\n    macaroon: m\n"
	if instance != "" {
		y += "    instance: " + instance + "\n"
	}
	return y
}

func TestLNDInstanceErrors(t *testing.T) {
	const want = "lightning.lnd.instance must be 1 to 24 letters, digits, '.', '_' or '-', starting with a letter or digit (got 3 characters); wallets show it, so never a secret"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"in the file", lndSection("'a b'"), nil, "kumo.yaml: lightning.lnd.instance (line 8) must be 1 to 24 letters, digits, '.', '_' or '-', starting with a letter or digit (got 3 characters); wallets show it, so never a secret"},
		{"from the environment", lndSection(""), map[string]string{"KUMO_LND_INSTANCE": "a:b"}, "kumo.yaml: lightning.lnd.instance (KUMO_LND_INSTANCE) " + strings.TrimPrefix(want, "lightning.lnd.instance ")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, tc.env, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// The instance tag tells deployments sharing an lnd node apart: unless set, it is derived from what
// stays the same across restarts of one deployment (its bots' public ids, the web chat's address) and
// never from a secret.
func TestLNDInstance(t *testing.T) {
	const tg, mx = "telegram: {token: '111:secret-one'}\n", "matrix: {homeserver: 'http://h', user_id: '@k:h', password: secret-pw}\n"
	tagOf := func(t *testing.T, instance, yaml string, e map[string]string) string {
		t.Helper()
		c, err := load(t, lndSection(instance)+yaml, e, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.backendCfg["lnd"].Elem().FieldByName("Instance").String()
	}
	base := tagOf(t, "", tg+mx, nil)
	cases := []struct {
		name     string
		instance string // lightning.lnd.instance in the file
		yaml     string // the platforms
		env      map[string]string
		same     bool   // the tag equals base's
		want     string // if set, the tag exactly
	}{
		{"the same deployment restarted", "", tg + mx, nil, true, ""},
		{"a rotated token of the same bot", "", "telegram: {token: '111:secret-two'}\n" + mx, nil, true, ""},
		{"the token from the environment", "", mx, map[string]string{"KUMO_TELEGRAM_TOKEN": "111:secret-three"}, true, ""},
		{"another Matrix password", "", tg + "matrix: {homeserver: 'http://h', user_id: '@k:h', password: secret-other}\n", nil, true, ""},
		{"another Telegram bot", "", "telegram: {token: '222:secret-one'}\n" + mx, nil, false, ""},
		{"another Matrix account", "", tg + "matrix: {homeserver: 'http://h', user_id: '@k2:h', password: secret-pw}\n", nil, false, ""},
		{"one more platform", "", tg + mx + "discord: {token: 'ODk.secret.x'}\n", nil, false, ""},
		{"the web chat served elsewhere", "", tg + mx, map[string]string{"KUMO_HTTP_LISTEN": "127.0.0.1:8081"}, false, ""},
		{"set in the file", "shop-eu", tg + mx, nil, false, "shop-eu"},
		{"set in the environment", "shop-eu", tg + mx, map[string]string{"KUMO_LND_INSTANCE": "shop-us"}, false, "shop-us"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := tagOf(t, c.instance, c.yaml, c.env)
			switch {
			case c.want != "" && got != c.want:
				t.Errorf("instance %q, want %q", got, c.want)
			case c.want == "" && c.same != (got == base):
				t.Errorf("instance %q, base %q: same %v, want %v", got, base, got == base, c.same)
			}
			if strings.Contains(got, "secret") || strings.Contains(got, "111") {
				t.Errorf("instance %q shows the configuration", got)
			}
		})
	}
}
