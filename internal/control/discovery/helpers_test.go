package discovery_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait: generous, since the machine is shared.
const waitTimeout = 10 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func cfg(version string) *weftv1.ProxyConfig {
	return &weftv1.ProxyConfig{
		Version:  version,
		Outbound: &weftv1.Outbound{TransparentAddress: "127.0.0.1:4140"},
	}
}

// startServer serves c on a loopback listener until the test ends and
// returns its address.
func startServer(t *testing.T, c *discovery.Cache, o discovery.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	g := grpc.NewServer()
	discovery.NewServer(c, o).Register(g)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawStream is a Discovery stream driven by hand, its responses pumped into
// a channel.
type rawStream struct {
	t      *testing.T
	stream discoveryv1.Discovery_StreamClient
	resps  chan *discoveryv1.DiscoveryResponse
	end    chan error // the Recv error that ended the stream
}

func openStream(t *testing.T, addr string) *rawStream {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := discoveryv1.NewDiscoveryClient(cc).Stream(ctx)
	if err != nil {
		cancel()
		_ = cc.Close()
		t.Fatalf("opening the stream: %v", err)
	}
	s := &rawStream{t: t, stream: stream, resps: make(chan *discoveryv1.DiscoveryResponse, 100), end: make(chan error, 1)}
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			r, err := stream.Recv()
			if err != nil {
				s.end <- err
				return
			}
			s.resps <- r
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-pumped
		_ = cc.Close()
	})
	return s
}

func (s *rawStream) send(req *discoveryv1.DiscoveryRequest) {
	s.t.Helper()
	if err := s.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		s.t.Fatalf("send: %v", err)
	}
}

// next waits for the next response.
func (s *rawStream) next() *discoveryv1.DiscoveryResponse {
	s.t.Helper()
	select {
	case r := <-s.resps:
		return r
	case err := <-s.end:
		s.t.Fatalf("stream ended while waiting for a response: %v", err)
	case <-time.After(waitTimeout):
		s.t.Fatalf("no response within %v", waitTimeout)
	}
	return nil
}

// none checks that no response arrives within d.
func (s *rawStream) none(d time.Duration) {
	s.t.Helper()
	select {
	case r := <-s.resps:
		s.t.Fatalf("unexpected response: version %s, config version %q", r.GetVersion(), r.GetConfig().GetVersion())
	case <-time.After(d):
	}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statusOf returns the status of the only stream of identity.
func statusOf(c *discovery.Cache, identity string) (discovery.ProxyStatus, bool) {
	for _, st := range c.Status() {
		if st.Node.GetIdentity() == identity {
			return st, true
		}
	}
	return discovery.ProxyStatus{}, false
}
