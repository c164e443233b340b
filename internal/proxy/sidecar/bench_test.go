package sidecar_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkPairHTTP1 measures one HTTP/1.1 request with a 1 KiB body through
// an outbound and an inbound proxy (mTLS, HTTP/2 between them) against the
// same request sent to the application directly. Compare the two sub-
// benchmarks; bench/run.sh measures the same path with fortio and HAProxy.
func BenchmarkPairHTTP1(b *testing.B) {
	addr := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	p := startPair(b, []app{{name: "web", protocol: "http1", addr: addr}}, "")
	payload := strings.Repeat("x", 1024)
	for _, tc := range []struct{ name, url string }{
		{"direct", "http://" + addr + "/"},
		{"weft-pair", p.url("web", "/")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 16}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Post(tc.url, "text/plain", strings.NewReader(payload))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
