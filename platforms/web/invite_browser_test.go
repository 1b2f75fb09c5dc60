package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/platforms/web"
)

// requestLog records every request line the server was sent.
type requestLog struct {
	mu   sync.Mutex
	uris []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.uris = append(l.uris, r.RequestURI)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) containing(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, u := range l.uris {
		if strings.Contains(u, s) {
			out = append(out, u)
		}
	}
	return out
}

// TestBrowserJoinByInviteLink: a visitor who opens <public_url>/#join=<token> lands in the room;
// the token never reaches the server in a request, and leaves the address bar; a single-use link
// opened a second time lets no one in.
func TestBrowserJoinByInviteLink(t *testing.T) {
	var (
		mu      sync.Mutex
		handler http.Handler
		reqs    requestLog
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := handler
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	logs := &bridgetest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := web.New(web.Config{Enabled: true, PublicURL: srv.URL + "/"}, log)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	handler = reqs.wrap(p.Handler())
	mu.Unlock()
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	b, err := bridge.New(cfg, lightning.NewDev(log), log, p)
	if err != nil {
		t.Fatal(err)
	}
	bridgetest.Run(t, b)

	alice := newVisitor(t, srv.URL, "alice")
	alice.do(chromedp.Click(chromedp.ID("btn-newroom")))
	alice.waitKind("reply", "Your room is open")
	alice.send("/invite once")
	text := alice.waitKind("reply", "Invite links")
	m := regexp.MustCompile(`web: (` + regexp.QuoteMeta(srv.URL) + `/#join=([A-Za-z0-9_-]{22}))`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no web invite link in %q", text)
	}
	link, token := m[1], m[2]

	bob := newVisitor(t, link, "bob")
	bob.waitKind("reply", "You joined the room")
	bob.waitJS(`document.body.dataset.room === 'in'`, "bob in the room")
	if hash := evalJS[string](bob, `location.hash`); hash != "" {
		t.Errorf("the token stays in the address bar: %q", hash)
	}
	alice.waitKind("notice", "joined. 2 members")

	carol := newVisitor(t, link, "carol")
	carol.waitKind("reply", "No live room has that password or invite")
	if got := reqs.containing(token); len(got) > 0 {
		t.Fatalf("the token reached the server in requests %q", got)
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("the token is in the log")
	}
	for _, v := range []*visitor{alice, bob, carol} {
		if p := v.problems(); len(p) > 0 {
			t.Errorf("%s: browser errors: %q", v.name, p)
		}
	}

}
