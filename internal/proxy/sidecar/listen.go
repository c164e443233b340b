package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

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
		keys = append(keys, listenerKey{kindInbound, cfg.Inbound.Address})
	}
	if a := cfg.Outbound.TransparentAddress; a != "" {
		keys = append(keys, listenerKey{kindTransparentOutbound, a})
	}
	for _, e := range cfg.Outbound.Explicit {
		keys = append(keys, listenerKey{kindExplicitOutbound, e.Address})
	}
	return keys
}

// reconcileListeners opens the listeners cfg adds and closes those it drops.
// If one cannot be opened, the ones opened by this call are closed again and
// the running set is untouched. Called with p.mu held.
func (p *Proxy) reconcileListeners(ctx context.Context, cfg *config.Compiled) error {
	want := map[listenerKey]bool{}
	var opened []*listener
	for _, k := range wanted(cfg) {
		want[k] = true
		if _, ok := p.listeners[k]; ok {
			continue
		}
		ln, err := net.Listen("tcp", k.addr)
		if err != nil {
			for _, l := range opened {
				l.ln.Close()
			}
			return fmt.Errorf("opening %s listener %s: %w", k.kind, k.addr, err)
		}
		ap, _ := netip.ParseAddrPort(ln.Addr().String())
		opened = append(opened, &listener{key: k, ln: ln, addr: ap, done: make(chan struct{})})
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
	return nil
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
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			p.log.Error("accept failed; listener stops", "address", l.key.addr, "error", err)
			return
		}
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
