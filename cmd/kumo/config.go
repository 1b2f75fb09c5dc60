package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/platforms/web"
)

// One configuration model: the file (if any), then KUMO_* environment variables, then flags, each
// setting keys of the same YAML tree, which is then decoded strictly once. So a variable or a flag
// does exactly what the same key in the file does, with or without a file: KUMO_TELEGRAM_TOKEN=…
// alone turns Telegram on, as `telegram: {token: …}` would.

// config is kumo's whole configuration.
type config struct {
	Rooms     bridge.Config   `yaml:"rooms"`
	Lightning lightningConfig `yaml:"lightning"`
	HTTP      httpConfig      `yaml:"http"`
	Log       logConfig       `yaml:"log"`

	// What the tables' rows decoded, by section.
	platformCfg map[string]reflect.Value // platform name -> *Config
	backendCfg  map[string]reflect.Value // backend name -> *Config (backends with one)

	// Decided by validate.
	on         []platformRow // the platforms that run
	backend    *backendRow   // nil when rooms are free and no backend was chosen
	devDefault bool          // the development backend, by default rather than by choice

	source string // the file read, "" for none
}

type lightningConfig struct {
	// Backend names a row of backends(): lnd, or dev (the development backend: no real money).
	Backend string `yaml:"backend" want:"the name of a payment backend" example:"lnd"`
}

type httpConfig struct {
	// Listen is where /healthz, /metrics and the web chat (if on) are served.
	Listen string `yaml:"listen" want:"host:port" example:"127.0.0.1:8080"`
	// TrustedProxies lists the reverse proxies (IPs or CIDR prefixes) whose X-Forwarded-For is
	// believed; from anyone else it is ignored. Default none.
	TrustedProxies []string `yaml:"trusted_proxies" example:"[10.0.0.1, \"fd00::/8\"]"`
	// MetricsListen, when set, serves /metrics there instead of on Listen (e.g. 127.0.0.1:9090).
	MetricsListen string `yaml:"metrics_listen" want:"host:port" example:"127.0.0.1:9090"`
}

type logConfig struct {
	Level  string `yaml:"level" want:"debug, info, warn or error" example:"info"`
	Format string `yaml:"format" want:"text or json" example:"text"`
}

const defaultListen = "127.0.0.1:8080"

// newConfig is the defaults, with an empty Config for every row of the tables.
func newConfig() *config {
	c := &config{Rooms: bridge.DefaultConfig(), platformCfg: map[string]reflect.Value{}, backendCfg: map[string]reflect.Value{}}
	// nil warnings mean rooms' defaults, which a short lifetime simply skips; warnings given
	// explicitly must fit in the lifetime.
	c.Rooms.Rooms.Warnings = nil
	c.HTTP.Listen = defaultListen
	c.Log = logConfig{Level: "info", Format: "text"}
	for _, p := range platforms() {
		c.platformCfg[p.name] = p.newConfig()
	}
	for _, b := range backends() {
		if b.newConfig != nil {
			c.backendCfg[b.name] = b.newConfig()
		}
	}
	return c
}

// sections are the YAML mappings and the structs they decode into, in report order.
func (c *config) sections() []section {
	out := []section{{"rooms", reflect.ValueOf(&c.Rooms)}, {"lightning", reflect.ValueOf(&c.Lightning)}}
	for _, b := range backends() {
		if v, ok := c.backendCfg[b.name]; ok {
			out = append(out, section{"lightning." + b.name, v})
		}
	}
	for _, p := range platforms() {
		out = append(out, section{p.name, c.platformCfg[p.name]})
	}
	return append(out, section{"http", reflect.ValueOf(&c.HTTP)}, section{"log", reflect.ValueOf(&c.Log)})
}

type section struct {
	path string
	ptr  reflect.Value // pointer to a struct
}

// key is one leaf of the configuration: a value a file, a variable or a flag can set.
type key struct {
	path   string // rooms.price_sat
	field  reflect.Value
	def    reflect.Value // its default, for examples
	want   string        // what it takes, in words
	ex     string        // an example value
	env    string        // KUMO_ROOMS_PRICE_SAT
	secret bool          // never a flag (flags show in ps)
}

var durationType = reflect.TypeFor[time.Duration]()

// schema lists every key of c and, for each mapping path ("" is the top), the keys it may hold.
func (c *config) schema() ([]key, map[string][]string) {
	var keys []key
	maps := map[string][]string{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "-" {
				continue
			}
			if opts == "inline" {
				walk(prefix, v.Field(i))
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			path := prefix + "." + name
			maps[prefix] = append(maps[prefix], name)
			if sf.Type.Kind() == reflect.Struct {
				walk(path, v.Field(i))
				continue
			}
			k := key{path: path, field: v.Field(i), want: sf.Tag.Get("want"), ex: sf.Tag.Get("example"),
				env: sf.Tag.Get("env"), secret: sf.Tag.Get("secret") == "true"}
			k.def = reflect.New(sf.Type).Elem()
			k.def.Set(v.Field(i))
			if k.env == "" {
				k.env = "KUMO_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
			}
			if k.want == "" {
				k.want = wantOf(sf.Type)
			}
			if k.ex == "" {
				k.ex = exampleOf(k.def)
			}
			keys = append(keys, k)
		}
	}
	for _, s := range c.sections() {
		parent, last := "", s.path
		if i := strings.LastIndexByte(s.path, '.'); i >= 0 {
			parent, last = s.path[:i], s.path[i+1:]
		}
		maps[parent] = append(maps[parent], last)
		maps[s.path] = maps[s.path][:0:0]
		walk(s.path, s.ptr.Elem())
	}
	return keys, maps
}

func wantOf(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t.Kind() == reflect.Slice && t.Elem() == durationType:
		return "a list of durations"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number"
	}
	return "text"
}

// exampleOf is the default value as one would write it in YAML, or a typical value of its type.
func exampleOf(v reflect.Value) string {
	t := v.Type()
	switch {
	case t == durationType:
		if v.Int() > 0 {
			return shortDuration(time.Duration(v.Int()))
		}
		return "15m"
	case t.Kind() == reflect.Slice && t.Elem() == durationType:
		return "[1h, 5m]"
	case t.Kind() == reflect.Slice:
		return "[https://chat.example.org]"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32:
		if !v.IsZero() {
			return fmt.Sprint(v.Interface())
		}
		return "10"
	}
	return ""
}

// shortDuration writes 24h0m0s as 24h and 1h30m0s as 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// problems is every reason a configuration cannot run, reported at once.
type problems struct {
	source string
	list   []string
}

func (p *problems) add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) Error() string {
	where := p.source
	if where == "" {
		where = "configuration"
	}
	if len(p.list) == 1 {
		return where + ": " + p.list[0]
	}
	return fmt.Sprintf("%s: %d problems:\n  %s", where, len(p.list), strings.Join(p.list, "\n  "))
}

// tree is the configuration as YAML nodes, with where each value set outside the file came from.
type tree struct {
	root   *yaml.Node // a mapping
	origin map[string]string
}

func (t *tree) lookup(path string) *yaml.Node {
	n := t.root
	for _, k := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// set puts v at path, creating the mappings on the way (a null section becomes a mapping).
func (t *tree) set(path string, v *yaml.Node, origin string) {
	n := t.root
	parts := strings.Split(path, ".")
	for i, k := range parts {
		if n.Kind != yaml.MappingNode {
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line}
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				next = n.Content[j+1]
			}
		}
		if i == len(parts)-1 {
			if next != nil {
				*next = *v
			} else {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
			}
			break
		}
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, next)
		}
		n = next
	}
	t.origin[path] = origin
}

// where says where a key's value came from: "line 3", "KUMO_ROOMS_LIFETIME", "-rooms.lifetime".
func (t *tree) where(path string) string {
	if o, ok := t.origin[path]; ok {
		return o
	}
	if n := t.lookup(path); n != nil && n.Line > 0 {
		return fmt.Sprintf("line %d", n.Line)
	}
	return ""
}

// valueNode turns a variable's or flag's text into what the same text would be in YAML; text keys
// take it as it is (a token may hold '#' or ': ').
func valueNode(k key, s string) *yaml.Node {
	if k.field.Kind() == reflect.String {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil || len(doc.Content) != 1 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	}
	n := doc.Content[0]
	n.Line = 0
	return n
}

// loadConfig builds the configuration from the file r (nil for none, named source), the environment
// and the flags already parsed (key path -> text), then validates it. Every problem is reported at
// once, each naming its key and where it was set.
func loadConfig(r io.Reader, source string, getenv func(string) string, flags map[string]string) (*config, error) {
	c := newConfig()
	c.source = source
	keys, maps := c.schema()
	p := &problems{source: source}
	t := &tree{root: &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, origin: map[string]string{}}
	if r != nil {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			p.add("%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, p
		}
		switch {
		case len(doc.Content) == 0: // an empty file
		case doc.Content[0].Kind == yaml.MappingNode:
			t.root = doc.Content[0]
		default:
			p.add("line %d: want a mapping of sections (rooms:, telegram:, ...), as in config.example.yaml", doc.Content[0].Line)
			return nil, p
		}
	}
	for _, k := range keys {
		if v := getenv(k.env); v != "" {
			t.set(k.path, valueNode(k, v), k.env)
		}
	}
	for _, k := range keys {
		if v, ok := flags[k.path]; ok {
			t.set(k.path, valueNode(k, v), "-"+k.path)
		}
	}
	checkKeys(t, t.root, "", maps, p)
	set := decodeKeys(t, keys, p)
	c.validate(t, keys, set, p)
	if len(p.list) > 0 {
		return nil, p
	}
	return c, nil
}

// checkKeys reports every key the schema does not know, with its line and the nearest known key.
func checkKeys(t *tree, n *yaml.Node, path string, maps map[string][]string, p *problems) {
	known, isMap := maps[path]
	if !isMap || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return // a leaf (decodeKeys checks its value), or an empty section
	}
	if n.Kind != yaml.MappingNode {
		p.add("%s (%s): want a section of keys, e.g. %s: {%s: ...}, got %s", path, t.where(path), path, first(known), describeNode(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		full := join(path, k)
		if !slices.Contains(known, k) {
			hint := "check its spelling against config.example.yaml"
			if near := nearest(k, known); near != "" {
				hint = fmt.Sprintf("did you mean %q?", join(path, near))
			}
			p.add("unknown key %q on line %d (%s)", full, n.Content[i].Line, hint)
			continue
		}
		checkKeys(t, n.Content[i+1], full, maps, p)
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func first(s []string) string {
	if len(s) == 0 {
		return "key"
	}
	return s[0]
}

// decodeKeys decodes each key that is set into its field. It returns the keys that were set.
func decodeKeys(t *tree, keys []key, p *problems) map[string]bool {
	set := map[string]bool{}
	for _, k := range keys {
		n := t.lookup(k.path)
		if n == nil {
			continue
		}
		path := k.path
		bad := func() {
			ex := ""
			if k.ex != "" {
				ex = ", e.g. " + k.ex
			}
			p.add("%s (%s): want %s%s, got %s", path, t.where(path), k.want, ex, describeNode(n))
		}
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" || n.Kind == yaml.MappingNode {
			bad()
			continue
		}
		v := reflect.New(k.field.Type())
		if err := n.Decode(v.Interface()); err != nil {
			bad()
			continue
		}
		// For every duration here zero means "the default": one written as 0 would silently be 24h.
		if k.field.Type() == durationType && v.Elem().Int() == 0 && !k.def.IsZero() {
			p.add("%s (%s): want a duration above 0, e.g. %s, got %q", path, t.where(path), k.ex, n.Value)
			continue
		}
		k.field.Set(v.Elem())
		set[path] = true
	}
	return set
}

func describeNode(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a section of keys"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Tag == "!!null":
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

// nearest is the known key within two edits of k, if there is one.
func nearest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// validate decides what runs and reports every value that cannot work. Each part's own Validate
// names its keys; here they get where they were set.
func (c *config) validate(t *tree, keys []key, set map[string]bool, p *problems) {
	addErr := func(err error) {
		for _, msg := range flatten(err) {
			p.add("%s", locate(msg, t, keys))
		}
	}
	present := func(path string) bool { return t.lookup(path) != nil }

	addErr(c.Rooms.Validate())
	if set["rooms.warnings"] {
		for _, w := range c.Rooms.Rooms.UnusedWarnings() {
			p.add("rooms.warnings (%s): %s is not before the end of a %s room; each warning must be shorter than rooms.lifetime, e.g. [1h, 5m]",
				t.where("rooms.warnings"), shortDuration(w), shortDuration(c.Rooms.Rooms.Lifetime))
		}
	}

	// Platforms: a section present (in the file, or by a variable or flag) turns one on; the web
	// chat runs also when nothing else does; <name>.enabled, where a platform has it, decides.
	enabled := map[string]bool{}
	for _, k := range keys {
		if name, ok := strings.CutSuffix(k.path, ".enabled"); ok && set[k.path] && k.field.Kind() == reflect.Bool {
			enabled[name] = k.field.Bool()
		}
	}
	var names []string
	for _, row := range platforms() {
		on := present(row.name)
		if e, ok := enabled[row.name]; ok {
			on = e
		}
		if on {
			c.on = append(c.on, row)
			names = append(names, row.name)
		}
	}
	for _, row := range platforms() {
		if row.alone && len(c.on) == 0 && !set[row.name+".enabled"] {
			c.on = append(c.on, row)
		}
	}
	for _, row := range c.on {
		addErr(row.validate(c.platformCfg[row.name]))
	}
	webOn := slices.ContainsFunc(c.on, func(r platformRow) bool { return r.alone })
	if len(c.on) == 0 {
		p.add("no platform is configured: add a telegram, discord or matrix section (or set KUMO_TELEGRAM_TOKEN, KUMO_DISCORD_TOKEN...), or web.enabled: true for the web chat")
	}

	// The payment backend: the one named; else lnd when its section is there; else the development
	// backend where it can work (the web chat pays its invoices); else nothing when rooms are free.
	name := c.Lightning.Backend
	if name == "" {
		for _, b := range backends() {
			if b.newConfig != nil && present("lightning."+b.name) {
				name = b.name
			}
		}
	}
	if name == "" && webOn {
		name, c.devDefault = lightning.DevName, true
	}
	switch {
	case name == "" && c.Rooms.PriceSat == 0:
	case name == "":
		if len(names) > 0 {
			p.add("lightning.backend is not set, and rooms cost %d sat on %s: set lightning.backend: lnd and lightning.lnd.address, lightning.lnd.tls_cert and lightning.lnd.macaroon for real payments (see config.example.yaml); or lightning.backend: dev for simulated ones (no real money; paid only from the web chat); or rooms.price_sat: 0 for free rooms",
				c.Rooms.PriceSat, strings.Join(names, ", "))
		}
	default:
		i := slices.IndexFunc(backends(), func(b backendRow) bool { return b.name == name })
		if i < 0 {
			var all []string
			for _, b := range backends() {
				all = append(all, b.name)
			}
			p.add("lightning.backend (%s): want one of %s, got %q", t.where("lightning.backend"), strings.Join(all, ", "), name)
			break
		}
		b := backends()[i]
		c.backend = &b
		if v, ok := c.backendCfg[name]; ok {
			if b.deployment != nil {
				var ids []string
				for _, row := range c.on {
					if row.identity != nil {
						if id := row.identity(c.platformCfg[row.name], c.HTTP); id != "" {
							ids = append(ids, row.name+":"+id)
						}
					}
				}
				b.deployment(v, ids)
			}
			addErr(b.validate(v))
		}
	}

	host, _, err := net.SplitHostPort(c.HTTP.Listen)
	if err != nil {
		p.add("http.listen (%s): want host:port, e.g. 127.0.0.1:8080, got %q", t.where("http.listen"), c.HTTP.Listen)
	} else if c.devDefault && webOn && !loopback(host) {
		// The rule for images and servers: a web chat others can reach does not hand out free
		// rooms unless someone chose that.
		p.add("http.listen (%s) is %s, reachable from other machines, and no payment backend is chosen: the web chat would give rooms away with simulated payments. To run a public demo on purpose, set lightning.backend: dev (or KUMO_LIGHTNING_BACKEND=dev); for real payments set lightning.backend: lnd (see config.example.yaml); or listen on 127.0.0.1",
			orDefault(t.where("http.listen")), c.HTTP.Listen)
	}
	if _, err := web.ParseTrustedProxies(c.HTTP.TrustedProxies); err != nil {
		p.add("http.trusted_proxies (%s): %v", t.where("http.trusted_proxies"), err)
	}
	if m := c.HTTP.MetricsListen; m != "" {
		if _, port, err := net.SplitHostPort(m); err != nil {
			p.add("http.metrics_listen (%s): want host:port, e.g. 127.0.0.1:9090, got %q", t.where("http.metrics_listen"), m)
		} else if m == c.HTTP.Listen && port != "0" {
			p.add("http.metrics_listen (%s) is http.listen (%s): leave it empty to serve /metrics there", t.where("http.metrics_listen"), m)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level (%s): want debug, info, warn or error, got %q", t.where("log.level"), c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		p.add("log.format (%s): want text or json, got %q", t.where("log.format"), c.Log.Format)
	}
}

func orDefault(where string) string {
	if where == "" {
		return "the default"
	}
	return where
}

// loopback says whether host is reachable from this machine only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// flatten lists the messages of a joined error.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// locate puts where a key was set after the key a message starts with: "rooms.max_members (line 3)
// must be...".
func locate(msg string, t *tree, keys []key) string {
	best := ""
	for _, k := range keys {
		path := k.path
		if len(path) > len(best) && strings.HasPrefix(msg, path) && len(msg) > len(path) && strings.ContainsRune(" :", rune(msg[len(path)])) {
			best = path
		}
	}
	if best == "" {
		return msg
	}
	if w := t.where(best); w != "" {
		return best + " (" + w + ")" + msg[len(best):]
	}
	return msg
}

// openConfig finds the file: the one named (which must exist), else ./config.yaml if present, else
// none.
func openConfig(path string) (io.ReadCloser, string, error) {
	explicit := path != ""
	if !explicit {
		path = "config.yaml"
	}
	f, err := os.Open(path)
	if err == nil {
		return f, path, nil
	}
	if !explicit && errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	return nil, "", fmt.Errorf("config: %w", err)
}

// platformRow is one messenger in the platforms table.
type platformRow struct {
	name      string
	newConfig func() reflect.Value // pointer to a zero Config
	validate  func(reflect.Value) error
	build     func(cfg reflect.Value, log *slog.Logger, w wiring) (bridge.Platform, error)
	alone     bool // runs when no other platform is configured
	// identity is what this deployment is known by on the platform ("" if nothing), for backends
	// that tag what belongs to one deployment.
	identity func(cfg reflect.Value, h httpConfig) string
}

func identifiedBy[C any](r platformRow, f func(C, httpConfig) string) platformRow {
	r.identity = func(v reflect.Value, h httpConfig) string { return f(*v.Interface().(*C), h) }
	return r
}

// wiring is what one part hands another at start.
type wiring struct {
	// simulate pays a development invoice: the web chat's "simulate payment" control.
	simulate func(ctx context.Context, invoiceID string) error
	// http is the HTTP server's configuration, for a platform served on it (the web chat), and
	// listenAddr the address it is bound to (http.listen with its port 0 resolved).
	http       httpConfig
	listenAddr string
}

type validator interface{ Validate() error }

func platformOf[C validator](name string, build func(C, *slog.Logger, wiring) (bridge.Platform, error)) platformRow {
	return platformRow{
		name:      name,
		newConfig: func() reflect.Value { return reflect.ValueOf(new(C)) },
		validate:  func(v reflect.Value) error { return v.Elem().Interface().(C).Validate() },
		build: func(v reflect.Value, log *slog.Logger, w wiring) (bridge.Platform, error) {
			return build(*v.Interface().(*C), log, w)
		},
	}
}

func (r platformRow) onAlone() platformRow { r.alone = true; return r }

// backendRow is one payment backend in the backends table.
type backendRow struct {
	name      string
	newConfig func() reflect.Value // nil: no lightning.<name> section
	validate  func(reflect.Value) error
	build     func(ctx context.Context, cfg reflect.Value, log *slog.Logger) (bridge.Payments, error)
	// deployment, when set, fills what the backend derives from the running platforms' identities
	// ("telegram:<bot id>", "web:<listen>"...) before the backend's Config is validated.
	deployment func(cfg reflect.Value, ids []string)
}

func withDeployment[C any](r backendRow, f func(*C, []string)) backendRow {
	r.deployment = func(v reflect.Value, ids []string) { f(v.Interface().(*C), ids) }
	return r
}

func backendOf[C any](name string, build func(context.Context, C, *slog.Logger) (bridge.Payments, error)) backendRow {
	return backendRow{
		name:      name,
		newConfig: func() reflect.Value { return reflect.ValueOf(new(C)) },
		validate: func(v reflect.Value) error {
			if c, ok := v.Interface().(validator); ok {
				return c.Validate()
			}
			return nil
		},
		build: func(ctx context.Context, v reflect.Value, log *slog.Logger) (bridge.Payments, error) {
			var c C
			if v.IsValid() {
				c = *v.Interface().(*C)
			}
			return build(ctx, c, log)
		},
	}
}

func (r backendRow) noConfig() backendRow { r.newConfig = nil; return r }
