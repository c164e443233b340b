package sidecar

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/proxy/authz"
	"github.com/weft-mesh/weft/internal/proxy/backend"
	"github.com/weft-mesh/weft/internal/proxy/coalesce"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/detect"
	"github.com/weft-mesh/weft/internal/proxy/httpproxy"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
	"github.com/weft-mesh/weft/internal/proxy/origdst"
	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
	"github.com/weft-mesh/weft/internal/proxy/tcpproxy"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// opaqueHeader precedes the bytes of an opaque TCP connection between two
// weft-proxies (ALPN weft.tcp): magic "WEFT", version 1, a reserved byte and
// the destination port, big-endian. Hand-written: eight fixed bytes need no
// framing library.
const opaqueHeaderLen = 8

func writeOpaqueHeader(w io.Writer, port uint16) error {
	var h [opaqueHeaderLen]byte
	copy(h[:], "WEFT")
	h[4] = 1
	binary.BigEndian.PutUint16(h[6:], port)
	_, err := w.Write(h[:])
	return err
}

func readOpaqueHeader(r io.Reader) (uint16, error) {
	var h [opaqueHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("reading the opaque transport header: %w", err)
	}
	if string(h[:4]) != "WEFT" || h[4] != 1 {
		return 0, errors.New("opaque transport header is not weft's (version 1); upgrade the calling weft-proxy")
	}
	port := binary.BigEndian.Uint16(h[6:])
	if port == 0 {
		return 0, errors.New("opaque transport header names port 0")
	}
	return port, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// serveTransparentOutbound handles a connection the capture rules
// redirected: its original destination says where it was going.
func (p *Proxy) serveTransparentOutbound(ctx context.Context, l *listener, c *net.TCPConn) {
	dst, err := origdst.OriginalDst(c)
	if err != nil || dst == l.addr || dst == addrPort(c.LocalAddr()) {
		// A direct connection to the listener would loop back into it.
		p.log.Debug("outbound connection without an original destination refused", "client", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	s := p.state.Load()
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	var b *backend.Backend
	proto := config.Detect
	if svc, ok := s.cfg.VIPs[dst]; ok {
		b = s.backends[svc.Name]
		proto = svc.Protocol
	}
	p.serveOutbound(ctx, s, c, b, dst, dst.Port(), proto)
}

// serveExplicitOutbound handles a connection to a port mapped to a service.
func (p *Proxy) serveExplicitOutbound(ctx context.Context, l *listener, c *net.TCPConn) {
	s := p.state.Load()
	e, ok := s.explicit[l.key.addr]
	if !ok {
		c.Close() // the listener is being closed by a new config
		return
	}
	// Detection remembers server-first ports; an explicit listener's own
	// port stands for its service.
	p.serveOutbound(ctx, s, c, s.backends[e.Service.Name], netip.AddrPort{}, l.addr.Port(), e.Protocol)
}

func (p *Proxy) serveOutbound(ctx context.Context, s *state, c *net.TCPConn, b *backend.Backend, dst netip.AddrPort, port uint16, proto config.Protocol) {
	client := addrPort(c.RemoteAddr())
	conn, d := p.detect(ctx, s, "outbound", c, port, proto)
	if conn == nil {
		return
	}
	switch d.proto {
	case config.HTTP1:
		p.serveHTTP1(outbound, conn, s.env.Outbound(httpproxy.Dest{Backend: b, Lookup: p.lookup, Addr: dst, Client: client}))
	case config.HTTP2, config.GRPC:
		p.serveHTTP2(outbound, conn, s.env.Outbound(httpproxy.Dest{Backend: b, Lookup: p.lookup, Addr: dst, Client: client}))
	default:
		p.relayOutbound(ctx, s, conn, b, dst, client, d)
	}
}

// detect resolves the protocol of c: the pinned one, or what the first bytes
// say, with the server name of a TLS client. It returns a nil conn when the
// connection is gone.
func (p *Proxy) detect(ctx context.Context, s *state, dir string, c net.Conn, port uint16, pinned config.Protocol) (net.Conn, detected) {
	if pinned == config.HTTP2 || pinned == config.GRPC {
		// HTTP/2 is client-first, so a look at the first bytes costs no
		// wait; an HTTP/1 client on such a port must still go through the
		// request-smuggling guard.
		res, conn, err := s.detector.Detect(ctx, c, 0)
		if err != nil {
			c.Close()
			return nil, detected{}
		}
		if res.Protocol == detect.HTTP1 {
			pinned = config.HTTP1
		}
		p.metrics.DetectResult(dir, string(pinned), false)
		return conn, detected{proto: pinned}
	}
	if pinned != config.Detect {
		p.metrics.DetectResult(dir, string(pinned), false)
		return c, detected{proto: pinned}
	}
	if s.detector.IsOpaquePort(port) || s.detector.Remembered(port) {
		p.metrics.DetectSkipped(dir)
		return c, detected{proto: config.Opaque}
	}
	res, conn, err := s.detector.Detect(ctx, c, port)
	if err != nil {
		p.log.Debug("protocol detection failed", "direction", dir, "client", c.RemoteAddr().String(), "error", err)
		c.Close()
		return nil, detected{}
	}
	proto := config.Opaque
	switch res.Protocol {
	case detect.HTTP1:
		proto = config.HTTP1
	case detect.HTTP2:
		proto = config.HTTP2
	}
	p.metrics.DetectResult(dir, res.Protocol.String(), res.ServerFirst)
	return conn, detected{proto: proto, tls: res.Protocol == detect.TLS, sni: res.SNI}
}

// detected is what detection made of a connection. TLS that the proxy does
// not terminate is relayed as opaque, with the server name it asked for
// recorded in metrics' protocol label and the access log.
type detected struct {
	proto config.Protocol
	tls   bool
	sni   string
}

func (d detected) label() string {
	if d.tls {
		return "tls"
	}
	return string(config.Opaque)
}

// relayOutbound relays an opaque connection to an endpoint of b (or to dst
// when b is nil), over mTLS when the endpoint is meshed.
func (p *Proxy) relayOutbound(ctx context.Context, s *state, c net.Conn, b *backend.Backend, dst, client netip.AddrPort, d detected) {
	labels := metrics.Labels{Direction: "outbound", Service: "passthrough"}
	var up net.Conn
	var err error
	if b == nil {
		up, err = dialTCP(ctx, s.cfg.Timeouts.Connect, dst.String())
	} else {
		labels.Service = b.Service.Name
		ep, pick, perr := b.Pick(b.ConnKey(client))
		if perr != nil {
			p.log.Warn("opaque connection refused", "service", b.Service.Name, "error", perr)
			c.Close()
			return
		}
		release, lerr := b.Acquire(ep)
		if lerr != nil {
			pick.Done(0, lerr) // a full endpoint is steered away from
			p.log.Warn("opaque connection refused", "service", b.Service.Name, "error", lerr)
			c.Close()
			return
		}
		defer release()
		start := time.Now()
		if ep.Meshed() {
			labels.Peer = ep.Identity.String()
			var tc *tls.Conn
			if tc, err = p.up.DialMTLS(ctx, httpproxy.PeerKey{Addr: ep.Dial(), ID: ep.Identity}, tlsid.ALPNOpaque); err == nil {
				if err = writeOpaqueHeader(tc, ep.Address.Port()); err != nil {
					tc.Close()
				}
				up = tc
			}
		} else {
			up, err = dialTCP(ctx, s.cfg.Timeouts.Connect, ep.Address.String())
		}
		pick.Done(time.Since(start), err)
		b.Report(ep, err == nil)
	}
	if err != nil {
		p.log.Warn("opaque connection failed", "service", labels.Service, "error", err)
		c.Close()
		return
	}
	p.relay(ctx, s, labels, d, c, up)
}

func (p *Proxy) relay(ctx context.Context, s *state, labels metrics.Labels, d detected, down, up net.Conn) {
	proto := d.label()
	closed := p.metrics.ConnOpened(labels, proto)
	toUp, toDown, err := tcpproxy.Relay(ctx, down, up, relayOptions(s.cfg))
	closed(toUp, toDown)
	if s.cfg.AccessLog {
		p.log.LogAttrs(ctx, slog.LevelInfo, "access",
			slog.String("direction", labels.Direction), slog.String("service", labels.Service),
			slog.String("peer", labels.Peer), slog.String("protocol", proto), slog.String("sni", d.sni),
			slog.String("client", down.RemoteAddr().String()), slog.String("upstream", up.RemoteAddr().String()),
			slog.Int64("bytes_to_upstream", toUp), slog.Int64("bytes_to_client", toDown), slog.Any("error", err))
	}
}

func relayOptions(cfg *config.Compiled) tcpproxy.Options {
	return tcpproxy.Options{IdleTimeout: cfg.Timeouts.TCPIdle}
}

func dialTCP(ctx context.Context, timeout time.Duration, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	return c, nil
}

// serveInbound handles a connection to the inbound listener: mesh traffic
// (mTLS with a weft ALPN) from peer proxies, and, in transparent mode,
// plaintext from clients outside the mesh unless mTLS is required.
func (p *Proxy) serveInbound(ctx context.Context, l *listener, c *net.TCPConn) {
	s := p.state.Load()
	in := s.cfg.Inbound
	var port uint16 // 0: explicit mode, each request or stream names its port
	if dst, err := origdst.OriginalDst(c); err == nil && dst != l.addr && dst != addrPort(c.LocalAddr()) {
		port = dst.Port()
		if in.Port(port).Skip {
			c.Close()
			return
		}
	}
	res, conn, err := s.detector.Detect(ctx, c, 0)
	if err != nil {
		c.Close()
		return
	}
	if res.Protocol == detect.TLS && hasWeftALPN(res.ALPN) {
		p.serveMesh(ctx, s, conn, port)
		return
	}
	// Plaintext (or TLS that is not weft's): a client outside the mesh.
	if port == 0 {
		if in.RequireMTLS {
			p.metrics.PlaintextRejected(metrics.ModeRequireMTLS)
			p.log.Info("plaintext connection refused: inbound requires mTLS", "client", c.RemoteAddr().String(), "port", port)
		} else {
			p.metrics.TLSRejected("inbound", "no-destination")
			p.log.Info("non-mesh connection to the explicit inbound listener refused: only weft-proxies (mTLS) can name a destination port here", "client", c.RemoteAddr().String())
		}
		conn.Close()
		return
	}
	ps := in.Port(port)
	proto := ps.Protocol
	switch {
	case (proto == config.HTTP2 || proto == config.GRPC) && res.Protocol == detect.HTTP1:
		proto = config.HTTP1 // through the request-smuggling guard
	case proto != config.Detect:
	case res.Protocol == detect.HTTP1:
		proto = config.HTTP1
	case res.Protocol == detect.HTTP2:
		proto = config.HTTP2
	default:
		proto = config.Opaque
	}
	p.metrics.DetectResult("inbound", string(proto), res.ServerFirst)
	if refused, by := in.PlaintextRefused(port); refused {
		p.refusePlaintext(s, conn, port, proto, by)
		return
	}
	h := s.env.Inbound(httpproxy.InboundConn{Port: port, Inbound: in, Local: p.localID(), Current: p.currentInbound})
	switch proto {
	case config.HTTP1:
		p.serveHTTP1(inbound, conn, h)
	case config.HTTP2, config.GRPC:
		p.serveHTTP2(inbound, conn, h)
	default:
		p.relayInbound(ctx, s, conn, spiffeid.ID{}, port, detected{proto: proto, tls: res.Protocol == detect.TLS, sni: res.SNI})
	}
}

// refusePlaintext refuses a plaintext connection to a port that requires
// mTLS (its own mtls: strict, or inbound.require_mtls): it is counted and
// logged, an HTTP client gets an answer that says why (403, gRPC
// UNAUTHENTICATED) and the connection is closed; anything else is closed at
// once. No byte reaches the application.
func (p *Proxy) refusePlaintext(s *state, c net.Conn, port uint16, proto config.Protocol, by config.MTLSMode) {
	s.env.PlaintextRejected(by)
	setting := "inbound.require_mtls"
	if by == config.MTLSStrict {
		setting = "port mtls strict"
	}
	p.log.Info("plaintext connection refused: the port requires mTLS", "client", c.RemoteAddr().String(), "port", port, "setting", setting)
	switch proto {
	case config.HTTP1:
		p.serveHTTP1(inbound, c, httpproxy.PlaintextRefused())
	case config.HTTP2, config.GRPC:
		p.serveHTTP2(inbound, c, httpproxy.PlaintextRefused())
	default:
		c.Close()
	}
}

// currentInbound is the running config's inbound side: inbound requests
// are authorized by it, also on connections accepted under an older one.
func (p *Proxy) currentInbound() *config.Inbound {
	if s := p.state.Load(); s != nil {
		return s.cfg.Inbound
	}
	return nil
}

// localID is the proxy's own identity; zero without a certificate.
func (p *Proxy) localID() spiffeid.ID {
	if src := p.tls.Load(); src != nil {
		return src.ID()
	}
	return spiffeid.ID{}
}

func hasWeftALPN(protos []string) bool {
	for _, a := range protos {
		if a == tlsid.ALPNHTTP2 || a == tlsid.ALPNHTTP1 || a == tlsid.ALPNOpaque {
			return true
		}
	}
	return false
}

// serveMesh terminates mTLS from a peer proxy and serves what its ALPN says.
func (p *Proxy) serveMesh(ctx context.Context, s *state, c net.Conn, port uint16) {
	src := p.tls.Load()
	if src == nil {
		c.Close()
		return
	}
	// Frames written in one burst leave in one write (see coalesce).
	tc := tls.Server(coalesce.New(c), src.ServerConfig(tlsid.ALPNHTTP2, tlsid.ALPNHTTP1, tlsid.ALPNOpaque))
	hctx, cancel := context.WithTimeout(ctx, s.cfg.Timeouts.Connect)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		p.metrics.TLSRejected("inbound", "handshake")
		p.log.Info("mTLS handshake from peer failed", "client", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	cs := tc.ConnectionState()
	peer, err := tlsid.PeerID(cs)
	if err != nil {
		p.metrics.TLSRejected("inbound", "identity")
		tc.Close()
		return
	}
	in := s.cfg.Inbound
	ic := httpproxy.InboundConn{Peer: peer, Local: src.ID(), Port: port, Inbound: in, Current: p.currentInbound, Expired: src.Expired}
	switch cs.NegotiatedProtocol {
	case tlsid.ALPNHTTP2:
		p.serveHTTP2(inbound, tc, s.env.Inbound(ic))
	case tlsid.ALPNHTTP1:
		p.serveHTTP1(inbound, tc, s.env.Inbound(ic))
	case tlsid.ALPNOpaque:
		_ = tc.SetReadDeadline(time.Now().Add(s.cfg.Timeouts.Connect))
		named, err := readOpaqueHeader(tc)
		_ = tc.SetReadDeadline(time.Time{})
		if err != nil {
			p.log.Info("opaque mesh connection refused", "peer", peer.String(), "error", err)
			tc.Close()
			return
		}
		if port == 0 {
			port = named
		}
		if in.Port(port).Skip {
			tc.Close()
			return
		}
		p.relayInbound(ctx, s, tc, peer, port, detected{proto: config.Opaque})
	default:
		tc.Close()
	}
}

// relayInbound relays an opaque connection to the application's port once
// authorization and the port's rate limit (one token per connection) allow
// it. Only the port and the caller are known: a denied
// connection is closed before the application is even dialled.
func (p *Proxy) relayInbound(ctx context.Context, s *state, c net.Conn, peer spiffeid.ID, port uint16, d detected) {
	in := s.cfg.Inbound
	if !s.env.Authorize(ctx, in.Authz, &authz.Request{Port: port, Source: authz.NewIdentity(peer), Self: authz.NewIdentity(p.localID())}) {
		c.Close()
		return
	}
	ps := in.Port(port)
	labels := metrics.Labels{Direction: "inbound", Service: strconv.Itoa(int(port)), Peer: peer.String()}
	if ps.Limiter != nil {
		// Opaque traffic has no requests: each connection takes a token.
		if ok, _, scope := ps.Limiter.Allow(labels.Peer); !ok {
			decision := "limited_port"
			if scope == ratelimit.ScopeIdentity {
				decision = "limited_identity"
			}
			s.env.Metrics.PolicyDecision(labels, "ratelimit", decision)
			c.Close()
			return
		}
	}
	addr := net.JoinHostPort(in.AppHost, strconv.Itoa(int(ps.AppPort)))
	up, err := dialTCP(ctx, s.cfg.Timeouts.Connect, addr)
	if err != nil {
		p.log.Warn("application unreachable", "address", addr, "error", err)
		c.Close()
		return
	}
	p.relay(ctx, s, labels, d, c, up)
}
