package discovery_test

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/proxy/config"
)

const idA = "spiffe://weft.test/ns/a/sa/web"

func TestCacheVersions(t *testing.T) {
	bad := cfg("x")
	bad.Admin = &weftv1.Admin{Address: "\xff"} // not UTF-8: cannot be encoded
	cases := []struct {
		name     string
		a, b     *weftv1.ProxyConfig
		same     bool
		prefixOK func(string) bool
	}{
		{"identical content", cfg("v1"), cfg("v1"), true, nil},
		{"different content", cfg("v1"), cfg("v2"), false, nil},
		{"nil is the empty config", nil, &weftv1.ProxyConfig{}, true, nil},
		{"unencodable", bad, cfg("x"), false, func(v string) bool { return strings.HasPrefix(v, "invalid-") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := discovery.NewCache()
			va := c.Set(idA, tc.a)
			vb := c.Set(idA, tc.b)
			if (va == vb) != tc.same {
				t.Errorf("versions %q and %q: same = %v, want %v", va, vb, va == vb, tc.same)
			}
			if len(vb) != 16 {
				t.Errorf("version %q: want 16 hex digits", vb)
			}
			if tc.prefixOK != nil && !tc.prefixOK(va) {
				t.Errorf("version %q of an unencodable config", va)
			}
		})
	}
}

func TestCacheCopiesConfig(t *testing.T) {
	c := discovery.NewCache()
	in := cfg("v1")
	v := c.Set(idA, in)
	in.Version = "changed"
	if got := c.Set(idA, cfg("v1")); got != v {
		t.Errorf("the cache kept the caller's message: version %s after mutation, want %s", got, v)
	}
}

func TestFirstMessageMustCarryNode(t *testing.T) {
	cases := []struct {
		name string
		req  *discoveryv1.DiscoveryRequest // nil: close without sending
		want string
	}{
		{"no node", &discoveryv1.DiscoveryRequest{}, "node"},
		{"no identity", &discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Id: "pod-1"}}, "node.identity"},
		{"closed before any message", nil, "node"},
	}
	c := discovery.NewCache()
	addr := startServer(t, c, discovery.Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStream(t, addr)
			if tc.req != nil {
				s.send(tc.req)
			}
			if err := s.stream.CloseSend(); err != nil {
				t.Fatalf("CloseSend: %v", err)
			}
			var err error
			select {
			case err = <-s.end:
			case r := <-s.resps:
				t.Fatalf("got a response %v, want the stream to end", r)
			case <-time.After(waitTimeout):
				t.Fatal("the stream did not end")
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("stream ended with %v, want InvalidArgument naming %q", err, tc.want)
			}
		})
	}
	if st := c.Status(); len(st) != 0 {
		t.Errorf("rejected streams show in Status: %+v", st)
	}
}

// TestAckNack drives the protocol by hand: snapshot on connect, ACK, push,
// NACK (no resend of the rejected version), stale answers ignored.
func TestAckNack(t *testing.T) {
	c := discovery.NewCache()
	watched := make(chan []string, 10)
	addr := startServer(t, c, discovery.Options{
		Debounce: 10 * time.Millisecond,
		OnWatch:  func(_ *discoveryv1.Node, s []string) { watched <- s },
	})
	v1 := c.Set(idA, cfg("v1"))
	s := openStream(t, addr)
	s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA}})

	r1 := s.next()
	if r1.GetVersion() != v1 || r1.GetNonce() == "" || r1.GetConfig().GetVersion() != "v1" {
		t.Fatalf("first response %v, want version %s with a nonce and config v1", r1, v1)
	}
	s.send(&discoveryv1.DiscoveryRequest{Version: v1, ResponseNonce: r1.GetNonce()})
	waitFor(t, "the ACK of v1", func() bool { st, _ := statusOf(c, idA); return st.AckedVersion == v1 })

	v2 := c.Set(idA, cfg("v2"))
	r2 := s.next()
	if r2.GetVersion() != v2 || r2.GetNonce() == r1.GetNonce() {
		t.Fatalf("second response %v, want version %s with a fresh nonce", r2, v2)
	}
	s.send(&discoveryv1.DiscoveryRequest{Version: v2, ResponseNonce: r2.GetNonce(), ErrorDetail: "outbound: bad"})
	waitFor(t, "the NACK of v2", func() bool { st, _ := statusOf(c, idA); return st.LastError == "outbound: bad" })
	st, _ := statusOf(c, idA)
	if st.RejectedVersion != v2 || st.AckedVersion != v1 || st.SentVersion != v2 {
		t.Errorf("status after NACK: %+v", st)
	}
	s.none(100 * time.Millisecond) // the rejected version is not resent

	// A stale ACK (of r1) is ignored; the watch-only message after it is a
	// sync point, handled in order.
	s.send(&discoveryv1.DiscoveryRequest{Version: v1, ResponseNonce: r1.GetNonce()})
	s.send(&discoveryv1.DiscoveryRequest{WatchServices: []string{"payments"}})
	select {
	case got := <-watched:
		if len(got) != 1 || got[0] != "payments" {
			t.Errorf("OnWatch got %v", got)
		}
	case <-time.After(waitTimeout):
		t.Fatal("OnWatch not called")
	}
	if st, _ := statusOf(c, idA); st.LastError != "outbound: bad" || st.AckedVersion != v1 {
		t.Errorf("a stale ACK changed the status: %+v", st)
	}

	v3 := c.Set(idA, cfg("v3"))
	r3 := s.next()
	if r3.GetVersion() != v3 {
		t.Fatalf("third response %v, want %s", r3, v3)
	}
	s.send(&discoveryv1.DiscoveryRequest{Version: v3, ResponseNonce: r3.GetNonce()})
	waitFor(t, "the ACK of v3", func() bool { st, _ := statusOf(c, idA); return st.AckedVersion == v3 })
	if st, _ := statusOf(c, idA); st.LastError != "" || st.RejectedVersion != "" {
		t.Errorf("an ACK of a later version must clear the rejection: %+v", st)
	}
}

// TestValidateWithholds: a snapshot failing Validate (here config.Compile) is
// never sent; the next good one is.
func TestValidateWithholds(t *testing.T) {
	c := discovery.NewCache()
	addr := startServer(t, c, discovery.Options{
		Debounce: 10 * time.Millisecond,
		Validate: func(cfg *weftv1.ProxyConfig) error { _, err := config.Compile(cfg); return err },
	})
	bad := cfg("bad")
	bad.Admin = &weftv1.Admin{Address: "localhost"}
	vBad := c.Set(idA, bad)

	s := openStream(t, addr)
	s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA}})
	waitFor(t, "the withheld status", func() bool { st, _ := statusOf(c, idA); return st.WithheldVersion == vBad })
	if st, _ := statusOf(c, idA); !strings.Contains(st.WithheldError, "admin.address") || st.SentVersion != "" {
		t.Errorf("status %+v: want WithheldError naming admin.address and nothing sent", st)
	}

	vGood := c.Set(idA, cfg("good"))
	if r := s.next(); r.GetVersion() != vGood {
		t.Fatalf("got version %s (config %q), want the good %s", r.GetVersion(), r.GetConfig().GetVersion(), vGood)
	}
	if st, _ := statusOf(c, idA); st.WithheldVersion != "" || st.SentVersion != vGood {
		t.Errorf("status after the good snapshot: %+v", st)
	}
}

// TestWaitsForFirstSnapshot: a proxy that connects before any Set gets the
// snapshot once it is set; Delete keeps it connected.
func TestWaitsForFirstSnapshot(t *testing.T) {
	c := discovery.NewCache()
	var mu sync.Mutex
	var events []string
	record := func(ev string) func(*discoveryv1.Node) {
		return func(n *discoveryv1.Node) { mu.Lock(); events = append(events, ev+" "+n.GetId()); mu.Unlock() }
	}
	addr := startServer(t, c, discovery.Options{
		Debounce:     10 * time.Millisecond,
		OnConnect:    record("connect"),
		OnDisconnect: record("disconnect"),
	})
	s := openStream(t, addr)
	s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA, Id: "pod-1"}})
	waitFor(t, "the stream in Status", func() bool { _, ok := statusOf(c, idA); return ok })
	s.none(50 * time.Millisecond)

	keyA := discovery.NodeKey(&discoveryv1.Node{Identity: idA, Id: "pod-1"})
	v1 := c.Set(keyA, cfg("v1"))
	if r := s.next(); r.GetVersion() != v1 {
		t.Fatalf("got %s, want %s", r.GetVersion(), v1)
	}
	c.Delete(keyA)
	if got := c.Set(keyA, cfg("v1")); got != v1 {
		t.Fatalf("Set after Delete: version %s, want %s", got, v1)
	}
	s.none(50 * time.Millisecond) // the proxy already runs v1

	if err := s.stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	select {
	case err := <-s.end:
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream end: %v, want a clean end", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the stream did not end")
	}
	waitFor(t, "the stream gone from Status", func() bool { return len(c.Status()) == 0 })
	waitFor(t, "OnDisconnect", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if events[0] != "connect pod-1" || events[1] != "disconnect pod-1" {
		t.Errorf("hooks: %v", events)
	}
}
