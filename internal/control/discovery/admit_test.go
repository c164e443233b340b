package discovery_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
)

// streamEvents records the callbacks of a server, by stream (the *Node).
type streamEvents struct {
	mu       sync.Mutex
	admitted []*discoveryv1.Node
	firsts   []*discoveryv1.DiscoveryRequest
	requests map[*discoveryv1.Node][]*discoveryv1.DiscoveryRequest
	gone     []*discoveryv1.Node
}

func (e *streamEvents) options(refuse func(*discoveryv1.Node) error) discovery.Options {
	e.requests = map[*discoveryv1.Node][]*discoveryv1.DiscoveryRequest{}
	return discovery.Options{
		Admit: func(_ context.Context, n *discoveryv1.Node, first *discoveryv1.DiscoveryRequest) error {
			if err := refuse(n); err != nil {
				return err
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.admitted = append(e.admitted, n)
			e.firsts = append(e.firsts, first)
			return nil
		},
		OnRequest: func(n *discoveryv1.Node, r *discoveryv1.DiscoveryRequest) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.requests[n] = append(e.requests[n], r)
		},
		OnDisconnect: func(n *discoveryv1.Node) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.gone = append(e.gone, n)
		},
	}
}

func (e *streamEvents) count(f func() int) func() int {
	return func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		return f()
	}
}

// TestAdmitAndOnRequest: Admit sees the first request and may refuse the
// stream with its status; OnRequest sees every later request, keyed by the
// same node pointer as Admit and OnDisconnect.
func TestAdmitAndOnRequest(t *testing.T) {
	var ev streamEvents
	c := discovery.NewCache()
	for _, id := range []string{"web-1", "refused"} {
		c.Set(discovery.NodeKey(&discoveryv1.Node{Identity: idA, Id: id}), cfg("v1"))
	}
	addr := startServer(t, c, ev.options(func(n *discoveryv1.Node) error {
		if n.GetId() == "refused" {
			return status.Error(codes.AlreadyExists, "registration: taken")
		}
		return nil
	}))

	cases := []struct {
		name     string
		id       string
		wantCode codes.Code
	}{
		{"admitted", "web-1", codes.OK},
		{"refused", "refused", codes.AlreadyExists},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStream(t, addr)
			s.send(&discoveryv1.DiscoveryRequest{Node: &discoveryv1.Node{Identity: idA, Id: tc.id}, Health: discoveryv1.Health_HEALTH_HEALTHY})
			if tc.wantCode != codes.OK {
				select {
				case err := <-s.end:
					if status.Code(err) != tc.wantCode {
						t.Fatalf("stream ended with %v, want %v", err, tc.wantCode)
					}
				case r := <-s.resps:
					t.Fatalf("a refused stream got a response: %v", r)
				case <-time.After(waitTimeout):
					t.Fatal("the refused stream did not end")
				}
				return
			}
			r := s.next()
			s.send(&discoveryv1.DiscoveryRequest{Version: r.GetVersion(), ResponseNonce: r.GetNonce()})
			s.send(&discoveryv1.DiscoveryRequest{Health: discoveryv1.Health_HEALTH_UNHEALTHY, HealthDetail: "down"})
			s.send(&discoveryv1.DiscoveryRequest{Deregister: true})
			if err := s.stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the stream's end", func() bool { return ev.count(func() int { return len(ev.gone) })() == 1 })

			ev.mu.Lock()
			defer ev.mu.Unlock()
			if len(ev.admitted) != 1 || ev.gone[0] != ev.admitted[0] {
				t.Fatalf("Admit and OnDisconnect got different nodes (or Admit ran %d times)", len(ev.admitted))
			}
			if ev.firsts[0].GetHealth() != discoveryv1.Health_HEALTH_HEALTHY || ev.firsts[0].GetNode().GetId() != "web-1" {
				t.Errorf("Admit got first request %v", ev.firsts[0])
			}
			reqs := ev.requests[ev.admitted[0]]
			if len(reqs) != 3 {
				t.Fatalf("OnRequest saw %d requests of the stream, want 3 (ACK, health, deregister)", len(reqs))
			}
			if reqs[0].GetResponseNonce() != r.GetNonce() || reqs[1].GetHealth() != discoveryv1.Health_HEALTH_UNHEALTHY ||
				reqs[1].GetHealthDetail() != "down" || !reqs[2].GetDeregister() {
				t.Errorf("OnRequest saw %v", reqs)
			}
		})
	}
	// The refused stream never reached OnDisconnect.
	if n := ev.count(func() int { return len(ev.gone) })(); n != 1 {
		t.Errorf("OnDisconnect ran %d times, want 1 (refused streams are not connected)", n)
	}
}
