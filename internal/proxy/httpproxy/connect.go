package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/weft-mesh/weft/internal/proxy/balance"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/tcpproxy"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// connect tunnels an HTTP/1.1 CONNECT request to its endpoint: to a meshed
// endpoint over a dedicated mTLS connection (ALPN weft.http1), to others
// directly.
func (h *outbound) connect(ctx context.Context, w http.ResponseWriter, r *http.Request, t *serviceTransport) error {
	target, ep := t.passthrough, config.Endpoint{}
	if b := t.target; b != nil {
		var p *balance.Pick
		var err error
		ep, p, err = b.Pick(b.RequestKey(r, t.client))
		if err != nil {
			upstreamError(w, r, false, err)
			return err
		}
		defer p.Done(0, nil)
		target = ep.Dial()
	}
	t.upstream = target.String()
	var up net.Conn
	var err error
	if ep.Meshed() {
		r.Header.Set(HeaderDstPort, strconv.Itoa(int(ep.Address.Port())))
		up, err = h.env.Up.DialMTLS(ctx, PeerKey{Addr: target, ID: ep.Identity}, tlsid.ALPNHTTP1)
	} else {
		up, err = h.env.Up.dial(ctx, target.String())
	}
	if err != nil {
		upstreamError(w, r, false, err)
		return err
	}
	return tunnel(w, r, up, h.env.TCPIdle)
}

// tunnel sends the CONNECT request r on up, relays the upstream's answer to
// the client and, when the upstream agreed (2xx), relays bytes both ways
// until either side is done. It takes ownership of up.
func tunnel(w http.ResponseWriter, r *http.Request, up net.Conn, idle tcpproxy.Options) error {
	// Until the upstream has answered, the client going away (or its
	// deadline) closes the upstream connection: an upstream that accepts and
	// never answers cannot pin the tunnel.
	stop := context.AfterFunc(r.Context(), func() { up.Close() })
	out := r.Clone(r.Context())
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // http.Request.Write would add Go's
	}
	if err := out.Write(up); err != nil {
		up.Close()
		err = fmt.Errorf("sending CONNECT upstream: %w", err)
		upstreamError(w, r, false, err)
		return err
	}
	ubr := bufio.NewReader(up)
	resp, err := http.ReadResponse(ubr, out)
	if err != nil {
		up.Close()
		err = fmt.Errorf("reading CONNECT answer: %w", err)
		upstreamError(w, r, false, err)
		return err
	}
	if !stop() {
		resp.Body.Close()
		return fmt.Errorf("CONNECT to %s: %w", r.Host, context.Cause(r.Context()))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer up.Close()
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Connection", "close")
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return nil
	}
	w.Header().Del("Content-Length")
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		up.Close()
		return fmt.Errorf("answering CONNECT: %w", err)
	}
	client, cbr, err := rc.Hijack()
	if err != nil {
		up.Close()
		return fmt.Errorf("taking over the CONNECT connection: %w", err)
	}
	_, _, err = tcpproxy.Relay(context.WithoutCancel(r.Context()),
		readerConn{Conn: client, r: cbr.Reader}, readerConn{Conn: up, r: ubr}, idle)
	return err
}

// readerConn is a conn whose first bytes were already buffered by a reader.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the underlying connection, when it can.
func (c readerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
