package matrixtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// FaultProxy sits in front of the homeserver and can answer message sends and redactions with
// M_LIMIT_EXCEEDED, exactly as Synapse does under its rc_message limit (Dendrite never rate-limits
// /send or /redact, so without this a test could not see a real 429 on them). Everything else passes
// through untouched.
type FaultProxy struct {
	URL string
	srv *httptest.Server

	mu         sync.Mutex
	send       faults // PUT .../send/...
	redact     faults // PUT .../redact/...
	retryAfter time.Duration
}

// faults counts one kind of request and how many of the next ones to refuse.
type faults struct {
	limitNext int
	total     int // requests that reached the proxy
	limited   int // of which answered 429
}

// NewFaultProxy proxies to the server at target.
func NewFaultProxy(target string) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("proxy target: %w", err)
	}
	p := &FaultProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // stream /sync long-polls through at once
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f *faults
		switch {
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/send/"):
			f = &p.send
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/redact/"):
			f = &p.redact
		}
		if f != nil {
			p.mu.Lock()
			f.total++
			limit := f.limitNext > 0
			if limit {
				f.limitNext--
				f.limited++
			}
			ms := p.retryAfter.Milliseconds()
			p.mu.Unlock()
			if limit {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprintf(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":%d}`, ms)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	return p, nil
}

// LimitSends makes the next n message sends fail with M_LIMIT_EXCEEDED and retry_after_ms.
func (p *FaultProxy) LimitSends(n int, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.send.limitNext, p.retryAfter = n, retryAfter
}

// Sends reports how many message sends arrived and how many of them were refused.
func (p *FaultProxy) Sends() (total, limited int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.send.total, p.send.limited
}

// LimitRedactions makes the next n redactions fail with M_LIMIT_EXCEEDED and retry_after_ms.
func (p *FaultProxy) LimitRedactions(n int, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redact.limitNext, p.retryAfter = n, retryAfter
}

// Redactions reports how many redactions arrived and how many of them were refused.
func (p *FaultProxy) Redactions() (total, limited int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.redact.total, p.redact.limited
}

// Close stops the proxy.
func (p *FaultProxy) Close() { p.srv.Close() }
