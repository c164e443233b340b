package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/config"
)

type direction string

const (
	inbound  direction = "inbound"
	outbound direction = "outbound"
)

type listenerKind uint8

const (
	kindInbound listenerKind = iota
	kindTransparentOutbound
	kindExplicitOutbound
)

type listenerKey struct {
	kind listenerKind
	addr string
	// optional: a listener the proxy serves when the host can, e.g. IPv6
	// loopback; failing to open it is logged, not an error.
	optional bool
}

// listener is one open listening socket and its accept loop.
type listener struct {
	key  listenerKey
	ln   net.Listener
	addr netip.AddrPort // the bound address, to tell redirected connections from direct ones
	done chan struct{}
}

// wanted lists the listeners cfg asks for.
func wanted(cfg *config.Compiled) []listenerKey {
	var keys []listenerKey
	if cfg.Inbound != nil {
		keys = append(keys, listenerKey{kind: kindInbound, addr: cfg.Inbound.Address})
	}
	if a := cfg.Outbound.TransparentAddress; a != "" {
		keys = append(keys, listenerKey{kind: kindTransparentOutbound, addr: a})
		// The capture rules redirect IPv6 to [::1] on the same port (see
		// internal/proxy/capture): on IPv4 loopback, listen there too.
		if ap, err := netip.ParseAddrPort(a); err == nil && ap.Addr() == netip.MustParseAddr("127.0.0.1") {
			keys = append(keys, listenerKey{kind: kindTransparentOutbound, addr: netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port()).String(), optional: true})
		}
	}
	for _, e := range cfg.Outbound.Explicit {
		keys = append(keys, listenerKey{kind: kindExplicitOutbound, addr: e.Address})
	}
	return keys
}

// openListeners opens the listeners cfg adds, without accepting yet. If one
// cannot be opened, those opened by this call are closed again and the
// running set is untouched. Called with p.mu held.
func (p *Proxy) openListeners(cfg *config.Compiled) ([]*listener, error) {
	var opened []*listener
	for _, k := range wanted(cfg) {
		if _, ok := p.listeners[k]; ok {
			continue
		}
		ln, err := net.Listen("tcp", k.addr)
		if err != nil && k.optional {
			p.log.Info("optional listener not opened", "kind", k.kind.String(), "address", k.addr, "error", err)
			continue
		}
		if err != nil {
			closeAll(opened)
			return nil, fmt.Errorf("opening %s listener %s: %w", k.kind, k.addr, err)
		}
		ap, _ := netip.ParseAddrPort(ln.Addr().String())
		opened = append(opened, &listener{key: k, ln: ln, addr: ap, done: make(chan struct{})})
	}
	return opened, nil
}

func closeAll(ls []*listener) {
	for _, l := range ls {
		l.ln.Close()
	}
}

// commitListeners closes the listeners cfg drops and starts accepting on the
// opened ones. Called with p.mu held, after the state of cfg is stored, so
// that no connection is accepted before there is a state to serve it.
func (p *Proxy) commitListeners(ctx context.Context, cfg *config.Compiled, opened []*listener) {
	want := map[listenerKey]bool{}
	for _, k := range wanted(cfg) {
		want[k] = true
	}
	for k, l := range p.listeners {
		if !want[k] {
			l.ln.Close()
			<-l.done
			delete(p.listeners, k)
			p.log.Info("listener closed", "kind", k.kind.String(), "address", k.addr)
		}
	}
	for _, l := range opened {
		p.listeners[l.key] = l
		go p.accept(ctx, l)
		p.log.Info("listener open", "kind", l.key.kind.String(), "address", l.ln.Addr().String())
	}
}

func (k listenerKind) String() string {
	switch k {
	case kindInbound:
		return "inbound"
	case kindTransparentOutbound:
		return "outbound-transparent"
	default:
		return "outbound-explicit"
	}
}

func (p *Proxy) accept(ctx context.Context, l *listener) {
	defer close(l.done)
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off and go on, as
			// net/http does; a listener that stopped would leave clients
			// hanging in its backlog.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("accept failed; retrying", "address", l.key.addr, "error", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		tc, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		if !p.conns.add(c) {
			c.Close() // draining
			continue
		}
		go func() {
			defer p.conns.remove(c)
			switch l.key.kind {
			case kindInbound:
				p.serveInbound(ctx, l, tc)
			case kindTransparentOutbound:
				p.serveTransparentOutbound(ctx, l, tc)
			case kindExplicitOutbound:
				p.serveExplicitOutbound(ctx, l, tc)
			}
		}()
	}
}

// closeListeners closes every listener and waits for the accept loops.
func (p *Proxy) closeListeners() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.listeners {
		l.ln.Close()
		<-l.done
		delete(p.listeners, k)
	}
}
