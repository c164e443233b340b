// Command weft-demo runs the demo services weft shows a mesh with: a gRPC
// catalog, a TCP inventory and an HTTP/1.1 frontend calling both. See
// internal/demo.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weft-mesh/weft/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := demo.New().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "weft-demo:", err)
		stop()
		os.Exit(1)
	}
}
