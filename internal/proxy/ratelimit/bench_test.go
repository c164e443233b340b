package ratelimit_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
)

func BenchmarkAllow(b *testing.B) {
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("spiffe://cluster.local/ns/default/sa/client-%d", i)
	}
	many := make([]string, 4096)
	for i := range many {
		many[i] = fmt.Sprintf("spiffe://cluster.local/ns/default/sa/churn-%d", i)
	}
	tests := []struct {
		name string
		cfg  ratelimit.Config
		ids  []string
	}{
		{"route", ratelimit.Config{RequestsPerSecond: 1e9}, []string{""}},
		{"identity_64_tracked", ratelimit.Config{RequestsPerSecond: 1e9, PerIdentityRequestsPerSecond: 1e9}, ids},
		{"identity_churn_4096_over_1024", ratelimit.Config{RequestsPerSecond: 1e9, PerIdentityRequestsPerSecond: 1e9, MaxIdentities: 1024}, many},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			l, err := ratelimit.New(tt.cfg)
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				n := int(next.Add(7919))
				for pb.Next() {
					l.Allow(tt.ids[n%len(tt.ids)])
					n++
				}
			})
		})
	}
}
