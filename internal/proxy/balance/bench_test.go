package balance

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPick measures one Pick plus its Done, with the real clock and
// random source, as the proxy uses them.
func BenchmarkPick(b *testing.B) {
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = Key{HashKey: fmt.Sprintf("user-%d", i), HasHashKey: true}
	}
	for _, p := range allPolicies {
		for _, n := range []int{3, 100} {
			weights := make([]uint32, n)
			for i := range weights {
				weights[i] = uint32(1 + i%4)
			}
			bal := New(p, Options{})
			bal.Update(endpoints(n, weights...))
			b.Run(fmt.Sprintf("%s/endpoints=%d", p, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					pk, err := bal.Pick(keys[i%len(keys)])
					if err != nil {
						b.Fatal(err)
					}
					pk.Done(time.Millisecond, nil)
					i++
				}
			})
			b.Run(fmt.Sprintf("%s/endpoints=%d/parallel", p, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						pk, err := bal.Pick(keys[i%len(keys)])
						if err != nil {
							b.Error(err)
							return
						}
						pk.Done(time.Millisecond, nil)
						i++
					}
				})
			})
		}
	}
}
