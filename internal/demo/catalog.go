package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// shutdownGrace bounds how long a service waits for in-flight work when its
// context is done before it closes everything.
const shutdownGrace = 3 * time.Second

// handshakeTimeout bounds a new gRPC connection's HTTP/2 handshake, so a
// client that connects and sends nothing cannot hold up a stop.
const handshakeTimeout = 2 * time.Second

// catalogPrice is the price of every item in the catalog.
const catalogPrice = 42

type catalogServer struct {
	testgrpc.UnimplementedTestServiceServer
	log *slog.Logger
}

// UnaryCall prices the item named by the request payload.
func (s catalogServer) UnaryCall(_ context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	item := string(req.GetPayload().GetBody())
	body, err := json.Marshal(struct {
		Item  string `json:"item"`
		Price int    `json:"price"`
	}{item, catalogPrice})
	if err != nil {
		return nil, fmt.Errorf("encode catalog entry: %w", err)
	}
	s.log.Debug("catalog lookup", "item", item)
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: body}}, nil
}

// Catalog serves the gRPC catalog on ln until ctx is done, then stops
// gracefully (forcibly after a short bound) and returns nil. It takes
// ownership of ln.
func Catalog(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	log = orDefault(log).With("service", "catalog")
	srv := grpc.NewServer(grpc.ConnectionTimeout(handshakeTimeout))
	testgrpc.RegisterTestServiceServer(srv, catalogServer{log: log})

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving gRPC", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		srv.Stop()
		return fmt.Errorf("catalog: serve: %w", err)
	case <-ctx.Done():
	}

	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(shutdownGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		log.Warn("graceful stop timed out; closing connections")
		srv.Stop()
		<-done
	}
	<-errc // Serve returns nil once stopped.
	log.Info("stopped")
	return nil
}

func orDefault(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.Default()
	}
	return log
}
