package sidecar

import (
	"context"
	"net"
	"net/http"
	"sync"

	"golang.org/x/net/http2"

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

// startServers starts one HTTP/1 server per direction (fed by connListener)
// and prepares the HTTP/2 servers; their timeouts come from the first
// config (a change of timeouts applies after a restart).
func (p *Proxy) startServers(ctx context.Context, cfg *config.Compiled) {
	p.h1 = map[direction]*http.Server{}
	p.h2 = map[direction]*http2.Server{}
	p.hl = map[direction]*connListener{}
	for _, d := range []direction{inbound, outbound} {
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Context().Value(handlerKey{}).(http.Handler).ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: cfg.Timeouts.HeaderRead,
			IdleTimeout:       cfg.Timeouts.HTTPIdle,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          discardLog(p.log),
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, handlerKey{}, c.(*handedConn).h)
			},
		}
		h2 := &http2.Server{
			IdleTimeout:                  cfg.Timeouts.HTTPIdle,
			MaxConcurrentStreams:         1000,
			MaxUploadBufferPerConnection: 4 << 20,
			MaxUploadBufferPerStream:     1 << 20,
		}
		// Registers h2's graceful shutdown (GOAWAY) with srv.Shutdown.
		_ = http2.ConfigureServer(srv, h2)
		l := newConnListener()
		p.h1[d], p.h2[d], p.hl[d] = srv, h2, l
		go func() { _ = srv.Serve(l) }()
	}
}

// serveHTTP1 serves c as HTTP/1.x with h, behind the request-smuggling guard.
func (p *Proxy) serveHTTP1(d direction, c net.Conn, h http.Handler) {
	cfg := p.state.Load().cfg
	g := h1guard.Wrap(c, h1guard.Options{MaxHeaderBytes: cfg.MaxHeaderBytes})
	if !p.hl[d].hand(&handedConn{Conn: g, h: h}) {
		c.Close()
	}
}

// serveHTTP2 serves c as HTTP/2 (prior knowledge or ALPN) with h, until the
// connection ends.
func (p *Proxy) serveHTTP2(ctx context.Context, d direction, c net.Conn, h http.Handler) {
	p.h2[d].ServeConn(c, &http2.ServeConnOpts{Context: ctx, Handler: h, BaseConfig: p.h1[d]})
}
