// Command echo is the demo backend behind a local weft-proxy pair: it
// answers every HTTP request with what it saw, so a newcomer can see what
// the mesh delivered (method, path, protocol, headers).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from the demo backend\n%s %s %s\n", r.Method, r.URL.RequestURI(), r.Proto)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s: %s\n", k, r.Header[k])
		}
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	slog.Info("demo backend listening", "addr", *addr)
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("demo backend stopped", "error", err)
		os.Exit(1)
	}
}
