package lndtest

import (
	"context"
	"io"
	"net"
	"sync"
)

// Proxy is a TCP relay that a test can cut and restore: it puts a client's connection to lnd "down"
// for exactly as long as the test wants, which a restart of lnd alone cannot (the client reconnects as
// soon as lnd is back, racing the test).
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on a free 127.0.0.1 port and relays to target until Close.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect instead of target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDown cuts every relayed connection and refuses new ones (down) or relays again (!down).
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.SetDown(true)
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(c)
		}()
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) relay(c net.Conn) {
	defer c.Close()
	if !p.track(c) {
		return
	}
	var d net.Dialer
	up, err := d.DialContext(context.Background(), "tcp", p.target)
	if err != nil {
		p.forget(c)
		return
	}
	defer up.Close()
	if !p.track(up) {
		p.forget(c)
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		// Either side ending (or SetDown closing one) ends both.
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
	p.forget(c)
	p.forget(up)
}

func (p *Proxy) forget(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}
