package httpproxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/proxy/coalesce"
	"github.com/weft-mesh/weft/internal/proxy/retry"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// PeerKey names a meshed endpoint: where to dial and whom to expect there.
type PeerKey struct {
	Addr netip.AddrPort
	ID   spiffeid.ID
}

// PoolLimits bound the plaintext HTTP/1 connections to each endpoint.
type PoolLimits struct {
	MaxConnections, MaxIdle int
	IdleTimeout             time.Duration
}

// Upstreams owns every connection the proxy opens to endpoints and to the
// local application, so that they are pooled, bounded and reaped in one place.
type Upstreams struct {
	connectTimeout func() time.Duration // the running config's timeouts.connect
	tls            func() *tlsid.Source

	mu    sync.Mutex
	peers map[PeerKey]*peer
	plain map[PoolLimits]*http.Transport // HTTP/1 to non-meshed endpoints and the app
	h2c   *http.Transport                // prior-knowledge HTTP/2 in plaintext
}

// peer holds the transports to one meshed endpoint.
type peer struct {
	h2 *http.Transport // the multiplexed connection (ALPN weft.h2)
	h1 *http.Transport // Upgrade and CONNECT (ALPN weft.http1)
}

// h2Transport speaks HTTP/2 with prior knowledge over the connections dial
// returns: plaintext, or mTLS that dial has already set up (so, to
// net/http, "unencrypted" HTTP/2). One connection per address carries all
// streams; pings detect dead peers.
func h2Transport(dial func(ctx context.Context, addr string) (net.Conn, error)) *http.Transport {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Protocols: protocols,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dial(ctx, addr)
		},
		DisableCompression: true, // a proxy passes encodings through untouched
		IdleConnTimeout:    90 * time.Second,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
}

// NewUpstreams returns an empty set of upstream pools. connectTimeout returns
// the running config's connect timeout (it follows reloads). tlsSource returns the
// proxy's current certificate source, or nil when it has none.
func NewUpstreams(connectTimeout func() time.Duration, tlsSource func() *tlsid.Source) *Upstreams {
	u := &Upstreams{
		connectTimeout: connectTimeout,
		tls:            tlsSource,
		peers:          map[PeerKey]*peer{},
		plain:          map[PoolLimits]*http.Transport{},
	}
	u.h2c = h2Transport(u.dial)
	return u
}

func (u *Upstreams) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: u.connectTimeout(), KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, notSent{fmt.Errorf("connecting to %s: %w", addr, err)}
	}
	return c, nil
}

// notSent marks a failure to set up a connection: the request never left,
// so retrying it elsewhere is always safe.
type notSent struct{ error }

func (e notSent) Unwrap() error        { return e.error }
func (e notSent) Is(target error) bool { return target == retry.ErrNotSent }

// DialMTLS opens a mutual-TLS connection to a peer proxy and checks that it
// presents the expected SPIFFE identity and agrees on alpn.
func (u *Upstreams) DialMTLS(ctx context.Context, k PeerKey, alpn string) (*tls.Conn, error) {
	src := u.tls()
	if src == nil {
		return nil, fmt.Errorf("calling meshed endpoint %s (%s): this proxy has no certificate; configure the tls section", k.Addr, k.ID)
	}
	raw, err := u.dial(ctx, k.Addr.String())
	if err != nil {
		return nil, err
	}
	// Frames written in one burst (HEADERS then DATA) leave in one write.
	c := tls.Client(coalesce.New(raw), src.ClientConfig(k.ID, alpn))
	hctx, cancel := context.WithTimeout(ctx, u.connectTimeout())
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, notSent{fmt.Errorf("mTLS handshake with %s (expecting %s): %w", k.Addr, k.ID, err)}
	}
	if got := c.ConnectionState().NegotiatedProtocol; got != alpn {
		c.Close()
		return nil, notSent{fmt.Errorf("peer %s did not negotiate %s (got %q): is it a weft-proxy inbound listener?", k.Addr, alpn, got)}
	}
	return c, nil
}

// Peer returns the round trippers for a meshed endpoint: multiplexed HTTP/2,
// and HTTP/1.1 for requests that upgrade the connection.
func (u *Upstreams) Peer(k PeerKey) (h2, h1 http.RoundTripper) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.peers[k]
	if !ok {
		p = &peer{
			h2: h2Transport(func(ctx context.Context, _ string) (net.Conn, error) {
				return u.DialMTLS(ctx, k, tlsid.ALPNHTTP2)
			}),
			h1: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return u.DialMTLS(ctx, k, tlsid.ALPNHTTP1)
				},
				MaxIdleConnsPerHost:   4,
				IdleConnTimeout:       90 * time.Second,
				ExpectContinueTimeout: time.Second,
				DisableCompression:    true,
			},
		}
		u.peers[k] = p
	}
	return p.h2, p.h1
}

// Plain returns the HTTP/1.1 transport for plaintext upstreams with the given
// pool limits (one transport per distinct limits, so services with the same
// limits share idle connections by host).
func (u *Upstreams) Plain(l PoolLimits) *http.Transport {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.plain[l]
	if !ok {
		t = &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return u.dial(ctx, addr)
			},
			MaxConnsPerHost:       l.MaxConnections,
			MaxIdleConnsPerHost:   l.MaxIdle,
			MaxIdleConns:          0,
			IdleConnTimeout:       l.IdleTimeout,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		}
		u.plain[l] = t
	}
	return t
}

// H2C returns the prior-knowledge plaintext HTTP/2 transport (gRPC and h2c
// upstreams that are not in the mesh, and the local application).
func (u *Upstreams) H2C() *http.Transport { return u.h2c }

// Retain drops the pools of meshed peers for which keep is false: their idle
// connections close now, and connections with requests in flight close when
// those requests finish. Called after each config swap.
func (u *Upstreams) Retain(keep func(PeerKey) bool) {
	u.mu.Lock()
	var gone []*peer
	for k, p := range u.peers {
		if !keep(k) {
			gone = append(gone, p)
			delete(u.peers, k)
		}
	}
	u.mu.Unlock()
	for _, p := range gone {
		p.h2.CloseIdleConnections()
		p.h1.CloseIdleConnections()
	}
}

// CloseIdle closes every idle upstream connection (drain).
func (u *Upstreams) CloseIdle() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range u.peers {
		p.h2.CloseIdleConnections()
		p.h1.CloseIdleConnections()
	}
	for _, t := range u.plain {
		t.CloseIdleConnections()
	}
	u.h2c.CloseIdleConnections()
}
