package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

const (
	// defaultItem is the item GET / asks about.
	defaultItem = "teapot"
	// inventoryTimeout bounds one inventory exchange, dial included.
	inventoryTimeout = 2 * time.Second
	// catalogTimeout bounds one catalog call.
	catalogTimeout = 2 * time.Second
)

type frontend struct {
	catalog       testgrpc.TestServiceClient
	inventoryAddr string
	log           *slog.Logger
}

// Frontend serves the HTTP/1.1 frontend on ln until ctx is done, then shuts
// down gracefully and returns nil. Each request calls the catalog over gRPC
// at catalogAddr (plaintext) and the inventory over TCP at inventoryAddr. It
// takes ownership of ln.
func Frontend(ctx context.Context, ln net.Listener, catalogAddr, inventoryAddr string, log *slog.Logger) error {
	log = orDefault(log).With("service", "frontend")
	cc, err := grpc.NewClient(catalogAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("frontend: catalog client for %q: %w", catalogAddr, err)
	}
	defer func() { _ = cc.Close() }()

	f := &frontend{catalog: testgrpc.NewTestServiceClient(cc), inventoryAddr: inventoryAddr, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { f.item(w, r, defaultItem) })
	mux.HandleFunc("GET /item/{name}", func(w http.ResponseWriter, r *http.Request) { f.item(w, r, r.PathValue("name")) })
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving HTTP", "addr", ln.Addr().String(), "catalog", catalogAddr, "inventory", inventoryAddr)

	select {
	case err := <-errc:
		return fmt.Errorf("frontend: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown incomplete; closing connections", "err", err)
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("frontend: serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

func (f *frontend) item(w http.ResponseWriter, r *http.Request, name string) {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		http.Error(w, "frontend: bad item name", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	entry, err := f.lookupCatalog(ctx, name)
	if err != nil {
		f.fail(w, "catalog", name, err)
		return
	}
	stock, err := f.lookupInventory(ctx, name)
	if err != nil {
		f.fail(w, "inventory", name, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "frontend: item %s | catalog: %s | inventory: %s\n", name, entry, stock)
}

func (f *frontend) fail(w http.ResponseWriter, dep, item string, err error) {
	f.log.Warn("dependency failed", "dependency", dep, "item", item, "err", err)
	http.Error(w, fmt.Sprintf("frontend: %s failed: %v", dep, err), http.StatusBadGateway)
}

func (f *frontend) lookupCatalog(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, catalogTimeout)
	defer cancel()
	resp, err := f.catalog.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte(name)}})
	if err != nil {
		return "", fmt.Errorf("UnaryCall: %w", err)
	}
	return string(resp.GetPayload().GetBody()), nil
}

func (f *frontend) lookupInventory(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, inventoryTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", f.inventoryAddr)
	if err != nil {
		return "", fmt.Errorf("dial: %w", err)
	}
	defer func() { _ = c.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := fmt.Fprintf(c, "STOCK %s\n", name); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		return "", fmt.Errorf("inventory said: %s", msg)
	}
	return line, nil
}
