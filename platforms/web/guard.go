package web

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
)

// Default connection caps (Config.MaxConnectionsPerIP, Config.MaxConnections).
const (
	DefaultMaxConnectionsPerIP = 20
	DefaultMaxConnections      = 10_000
)

// Validate reports every value of the web section that cannot work, each with its key.
func (c Config) Validate() error {
	var errs []error
	if c.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("web.max_connections_per_ip must be positive (or 0 for the default %d), got %d",
			DefaultMaxConnectionsPerIP, c.MaxConnectionsPerIP))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("web.max_connections must be positive (or 0 for the default %d), got %d",
			DefaultMaxConnections, c.MaxConnections))
	}
	if c.PublicURL != "" {
		if _, err := parseOrigin(c.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("web.public_url: %w", err))
		}
	}
	for _, origin := range c.Origins {
		if _, err := parseOrigin(origin); err != nil {
			errs = append(errs, fmt.Errorf("web.origins: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (c Config) perIPCap() int {
	if c.MaxConnectionsPerIP > 0 {
		return c.MaxConnectionsPerIP
	}
	return DefaultMaxConnectionsPerIP
}

func (c Config) globalCap() int {
	if c.MaxConnections > 0 {
		return c.MaxConnections
	}
	return DefaultMaxConnections
}

// ParseTrustedProxies reads `http.trusted_proxies`: IP addresses and CIDR prefixes of the reverse
// proxies whose X-Forwarded-For kumo believes.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix like 10.0.0.0/8", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// WithTrustedProxies makes the platform believe X-Forwarded-For when, and only when, the direct peer
// is one of these proxies (see ParseTrustedProxies). Without it the peer's address is the client's.
func WithTrustedProxies(proxies []netip.Prefix) Option {
	return func(o *options) { o.trusted = proxies }
}

// WithListenAddr tells the platform the address its HTTP server listens on, so that a host name
// there is accepted in the Host header like localhost and the public URL's host.
func WithListenAddr(addr string) Option {
	return func(o *options) { o.listen = addr }
}

func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address of whoever opened the request: the direct peer, unless that is a trusted
// proxy, in which case the rightmost X-Forwarded-For hop that is not a trusted proxy. Hops left of it
// were written by the client and prove nothing. It is the zero Addr when the peer is unknowable.
func clientIP(r *http.Request, proxies []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !trusted(proxies, ip) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			// A trusted proxy only ever appends a valid address: this one came from further out, and
			// the last trusted hop is as close to the client as can be known.
			return ip
		}
		ip = hop
		if !trusted(proxies, ip) {
			return ip
		}
	}
	return ip // every hop is a trusted proxy: the leftmost is the client
}

// parseHop reads one X-Forwarded-For entry: an address, perhaps with a port or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// originOf is the grouping key of a client address (bridge.Inbound.Origin): an IPv4 address as it
// is, an IPv6 address by its /64, since one subscriber usually holds a whole /64.
func originOf(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	if ip.Is4() {
		return "ip:" + ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return "ip:" + p.String()
}

// connLimiter counts open WebSockets per origin and in all.
type connLimiter struct {
	perIP, global int

	mu    sync.Mutex
	total int
	by    map[string]int
}

func newConnLimiter(perIP, global int) *connLimiter {
	return &connLimiter{perIP: perIP, global: global, by: make(map[string]int)}
}

type refusal struct {
	code   int
	reason string // shown by the page; a close reason holds at most 123 bytes
}

// acquire takes a connection slot for key, or says why not.
func (l *connLimiter) acquire(key string) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.global {
		return &refusal{code: closeTryAgainLater, reason: "kumo is full right now: too many open chats. Try again in a minute."}
	}
	if l.by[key] >= l.perIP {
		return &refusal{code: closePolicy, reason: fmt.Sprintf("Too many open chats from your network (limit %d). Close some tabs.", l.perIP)}
	}
	l.total++
	l.by[key]++
	return nil
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.by[key]--; l.by[key] <= 0 {
		delete(l.by, key) // nothing about a visitor stays once they are gone
	}
}

// open is how many connections hold a slot now.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// hostGuard refuses requests whose Host is a name kumo was not told it has: a page on another site
// whose name was re-pointed at kumo's address (DNS rebinding) must not be served as kumo's own page.
// IP literals are always fine: a page served from one is the same origin as kumo itself.
func (p *Adapter) hostGuard(next http.Handler) http.Handler {
	allowed := map[string]bool{"localhost": true}
	if p.opts.listen != "" {
		if h, _, err := net.SplitHostPort(p.opts.listen); err == nil && h != "" {
			allowed[strings.ToLower(h)] = true
		}
	}
	for _, o := range append([]string{p.cfg.PublicURL}, p.cfg.Origins...) {
		if u, err := url.Parse(o); err == nil && u.Hostname() != "" {
			allowed[strings.ToLower(u.Hostname())] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), "."))
		_, ipErr := netip.ParseAddr(host)
		if ipErr == nil || allowed[host] || strings.HasSuffix(host, ".localhost") {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, fmt.Sprintf("kumo does not serve the host %q. Open kumo at its own address; "+
			"its operator sets the public address in web.public_url.", host), http.StatusMisdirectedRequest)
	})
}
