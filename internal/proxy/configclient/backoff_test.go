package configclient

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		name    string
		backoff Backoff
		rand    float64
		attempt int
		want    time.Duration
	}{
		{"first, top of the jitter", Backoff{}, 1, 0, DefaultBackoffInitial},
		{"first, half", Backoff{}, 0.5, 0, DefaultBackoffInitial / 2},
		{"doubles", Backoff{Initial: time.Second, Max: time.Minute}, 1, 3, 8 * time.Second},
		{"capped", Backoff{Initial: time.Second, Max: 10 * time.Second}, 1, 5, 10 * time.Second},
		{"capped far out", Backoff{}, 1, 1000, DefaultBackoffMax},
		{"zero jitter", Backoff{}, 0, 4, 0},
		{"max below initial", Backoff{Initial: time.Second, Max: time.Millisecond}, 1, 2, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Options{
				Address: "127.0.0.1:1",
				Dial:    []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
				Node:    &discoveryv1.Node{Identity: "spiffe://weft.test/ns/a/sa/a"},
				Apply:   func(context.Context, *weftv1.ProxyConfig, string) error { return nil },
				Backoff: tc.backoff,
				Rand:    func() float64 { return tc.rand },
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.backoff(tc.attempt); got != tc.want {
				t.Errorf("backoff(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}
