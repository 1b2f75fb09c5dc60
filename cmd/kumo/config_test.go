package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigExampleLoads(t *testing.T) {
	f, err := os.Open("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := loadConfig(f, env(map[string]string{"KUMO_TELEGRAM_TOKEN": "1:x", "KUMO_DISCORD_TOKEN": "d", "KUMO_MATRIX_PASSWORD": "p"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rooms.PriceSat != 10000 || c.Rooms.Rooms.Lifetime != 24*time.Hour || c.Rooms.InvoiceExpiry != 15*time.Minute || c.Rooms.Rooms.MaxMembers != 50 {
		t.Fatalf("rooms: %+v", c.Rooms)
	}
	if c.Lightning.Backend != "lnd" || c.Lightning.LND.Address != "127.0.0.1:10009" {
		t.Fatalf("lightning: %+v", c.Lightning)
	}
	if c.Telegram.Token != "1:x" || c.Discord.Token != "d" || c.Matrix.Password != "p" || c.webEnabled() {
		t.Fatal("environment overrides or sections not applied")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       []string // every one must appear in the error; none means no error
	}{
		{"unknown key is named", "rooms:\n  lifetme: 1h\nweb: {enabled: true}\n", nil, []string{`unknown key "rooms.lifetme" on line 2`}},
		{"unknown section", "telegramm:\n  token: x\n", nil, []string{`unknown key "telegramm" on line 1`}},
		{"bad duration", "rooms:\n  lifetime: forever\n", nil, []string{"line 2"}},
		{"every bad value at once", "rooms:\n  lifetime: 10ms\nlightning:\n  backend: btcpay\nhttp:\n  listen: nowhere\ntelegram: {}\n", nil,
			[]string{"rooms.lifetime must be at least 1s", "lightning.backend must be lnd or dev", "http.listen must be host:port", "telegram.token is empty"}},
		{"lnd needs its paths", "lightning:\n  backend: lnd\nweb: {enabled: true}\n", nil, []string{"lightning.lnd.address"}},
		{"lnd instance is checked", lndSection("'has spaces'"), nil, []string{"lightning.lnd.instance must be"}},
		{"lnd instance from the environment is checked", lndSection(""), map[string]string{"KUMO_LND_INSTANCE": "a:b"}, []string{"lightning.lnd.instance must be"}},
		{"matrix needs a secret", "matrix:\n  homeserver: http://h\n  user_id: '@k:h'\n", nil, []string{"matrix.access_token or matrix.password"}},
		{"secret from the environment", "matrix:\n  homeserver: http://h\n  user_id: '@k:h'\n", map[string]string{"KUMO_MATRIX_ACCESS_TOKEN": "t"}, nil},
		{"token alone enables telegram", "rooms: {price_sat: 0}\n", map[string]string{"KUMO_TELEGRAM_TOKEN": "1:x"}, nil},
		{"no platform", "rooms: {price_sat: 0}\n", nil, []string{"no platform is configured"}},
		{"negative price", "rooms: {price_sat: -1}\nweb: {enabled: true}\n", nil, []string{"rooms.price_sat"}},
		{"empty file is no platform", "", nil, []string{"no platform is configured"}},
		{"edge keys", "web: {enabled: true, public_url: 'https://chat.example.org', max_connections_per_ip: 5, max_connections: 500}\n" +
			"http: {trusted_proxies: [10.0.0.1, 'fd00::/8'], metrics_listen: '127.0.0.1:9090'}\n", nil, nil},
		{"bad edge keys", "web: {enabled: true, public_url: chat.example.org, max_connections_per_ip: -1, max_connections: -5}\n" +
			"http: {listen: '127.0.0.1:8080', trusted_proxies: [proxy.lan], metrics_listen: '127.0.0.1:8080'}\n", nil,
			[]string{"web.public_url", "web.max_connections_per_ip", "web.max_connections must", `http.trusted_proxies: "proxy.lan"`, "http.metrics_listen is http.listen"}},
		{"media keys", "rooms: {max_media_bytes: 10485760, media_memory: 104857600}\nweb: {enabled: true}\n", nil, nil},
		{"media memory below one file", "rooms: {max_media_bytes: 10485760, media_memory: 1048576}\nweb: {enabled: true}\n", nil,
			[]string{"rooms.media_memory (1048576) must be at least rooms.max_media_bytes"}},
		{"metrics_listen not an address", "web: {enabled: true}\nhttp: {metrics_listen: nowhere}\n", nil, []string{"http.metrics_listen must be host:port"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(strings.NewReader(c.yaml), env(c.env))
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
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

// The instance tag tells deployments sharing an lnd node apart: unless set, it is derived from what
// stays the same across restarts of one deployment (its bots' public ids, the web chat's address) and
// never from a secret.
func TestLNDInstance(t *testing.T) {
	const tg, mx = "telegram: {token: '111:secret-one'}\n", "matrix: {homeserver: 'http://h', user_id: '@k:h', password: secret-pw}\n"
	tagOf := func(t *testing.T, instance, yaml string, e map[string]string) string {
		t.Helper()
		c, err := loadConfig(strings.NewReader(lndSection(instance)+yaml), env(e))
		if err != nil {
			t.Fatal(err)
		}
		return c.Lightning.LND.Instance
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
