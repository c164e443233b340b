package sidecar

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/h1guard"
)

// handedConn is a connection handed to the HTTP/1 server with the handler
// that serves its requests (each connection has its own destination).
type handedConn struct {
	net.Conn
	h http.Handler
}

type handlerKey struct{}

// connListener feeds detected connections to an http.Server one by one.
// Hand-written because net/http only serves from a net.Listener and the
// proxy accepts, detects and routes connections before HTTP starts.
type connListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{
		addr:   &net.TCPAddr{},
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// hand gives c to the server; false when the server is shut down.
func (l *connListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

// startServers starts one server per direction, fed by a connListener, that
// speaks HTTP/1 and prior-knowledge HTTP/2 (net/http tells them apart by the
// HTTP/2 preface). Timeouts come from the first config: a change of them
// applies after a restart.
func (p *Proxy) startServers(ctx context.Context, cfg *config.Compiled) {
	p.servers = map[direction]*http.Server{}
	p.hl = map[direction]*connListener{}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	for _, d := range []direction{inbound, outbound} {
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Context().Value(handlerKey{}).(http.Handler).ServeHTTP(w, r)
			}),
			Protocols:         protocols,
			ReadHeaderTimeout: cfg.Timeouts.HeaderRead,
			IdleTimeout:       cfg.Timeouts.HTTPIdle,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			HTTP2: &http.HTTP2Config{
				MaxConcurrentStreams:          1000,
				MaxReceiveBufferPerConnection: 4 << 20,
				MaxReceiveBufferPerStream:     1 << 20,
				SendPingTimeout:               time.Minute,
			},
			ErrorLog:    p.errorLog,
			BaseContext: func(net.Listener) context.Context { return ctx },
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, handlerKey{}, c.(*handedConn).h)
			},
		}
		l := newConnListener()
		p.servers[d], p.hl[d] = srv, l
		go func() { _ = srv.Serve(l) }()
	}
}

// stopServers closes the HTTP servers of a proxy that failed to start.
func (p *Proxy) stopServers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, srv := range p.servers {
		srv.Close()
	}
}

// serveHTTP1 serves c as HTTP/1.x with h, behind the request-smuggling guard.
func (p *Proxy) serveHTTP1(d direction, c net.Conn, h http.Handler) {
	cfg := p.state.Load().cfg
	p.hand(d, h1guard.Wrap(c, h1guard.Options{MaxHeaderBytes: cfg.MaxHeaderBytes}), h)
}

// serveHTTP2 serves c as HTTP/2 with h. A mesh connection arrives as a
// *tls.Conn that is already handshaken; wrapped in handedConn it is served
// as prior-knowledge HTTP/2, and the peer's identity travels with h.
func (p *Proxy) serveHTTP2(d direction, c net.Conn, h http.Handler) {
	p.hand(d, c, h)
}

func (p *Proxy) hand(d direction, c net.Conn, h http.Handler) {
	if !p.hl[d].hand(&handedConn{Conn: c, h: h}) {
		c.Close()
	}
}
