package route_test

import (
	"fmt"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

// benchRules are 10 rules of one route, each a path prefix and two header
// matches; a request for tenant-7 and version v2 under /api/v1/orders
// matches rule 7 only after the rules for the other tenants were tried.
func benchRules() []route.Rule {
	var rs []route.Rule
	for i := range 10 {
		rs = append(rs, route.Rule{
			Matches: []route.Match{{
				Path:    prefix("/api/v1/orders"),
				Headers: hdrs("X-Tenant", fmt.Sprintf("tenant-%d", i), "x-version", "v2"),
			}},
			Backends: []route.Backend{
				{Service: fmt.Sprintf("orders-%d", i), Port: 8080, Weight: 90},
				{Service: fmt.Sprintf("orders-%d-canary", i), Port: 8080, Weight: 10},
			},
		})
	}
	return rules("shop/orders", rs...)
}

func BenchmarkMatch(b *testing.B) {
	tab := mustTable(b, benchRules())
	r := req("GET", "/api/v1/orders/17?expand=items", "X-Tenant", "tenant-7", "X-Version", "v2", "Accept", "application/json", "User-Agent", "bench")
	if sel, ok := tab.Match(r); !ok || sel.Rule.Index != 7 {
		b.Fatalf("matched %s, want shop/orders:7", got(sel, ok))
	}
	b.ReportAllocs()
	for b.Loop() {
		tab.Match(r)
	}
}

func BenchmarkMatchAndPick(b *testing.B) {
	tab := mustTable(b, benchRules())
	r := req("GET", "/api/v1/orders/17", "X-Tenant", "tenant-7", "X-Version", "v2")
	b.ReportAllocs()
	var rnd uint64
	for b.Loop() {
		sel, _ := tab.Match(r)
		rnd += 0x9e3779b97f4a7c15
		sel.PickBackend(rnd)
	}
}
