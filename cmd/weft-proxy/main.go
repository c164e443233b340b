// Command weft-proxy is weft's data plane: the sidecar proxy beside every
// workload. See internal/proxy/command for its commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weft-mesh/weft/internal/proxy/command"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := command.New().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "weft-proxy:", err)
		stop()
		os.Exit(1)
	}
}
