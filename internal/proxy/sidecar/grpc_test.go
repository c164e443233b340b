package sidecar_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testService is a real gRPC server for grpc.testing.TestService covering
// the four kinds of call; a request may ask for a status to be returned.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	deadlines chan time.Duration // remaining deadline the server saw
	failNext  atomic.Int64       // that many unary calls fail with UNAVAILABLE first
	calls     atomic.Int64
}

func payload(n int32) *testgrpc.Payload {
	return &testgrpc.Payload{Body: []byte(strings.Repeat("p", int(n)))}
}

func echoStatus(s *testgrpc.EchoStatus) error {
	if s == nil || s.Code == 0 {
		return nil
	}
	return status.Error(codes.Code(s.Code), s.Message)
}

func (s *testService) UnaryCall(ctx context.Context, r *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.calls.Add(1)
	if s.failNext.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "warming up")
	}
	if dl, ok := ctx.Deadline(); ok && s.deadlines != nil {
		select {
		case s.deadlines <- time.Until(dl):
		default:
		}
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("sleep")) > 0 {
		d, _ := time.ParseDuration(md.Get("sleep")[0])
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := echoStatus(r.ResponseStatus); err != nil {
		return nil, err
	}
	grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t1"))
	return &testgrpc.SimpleResponse{Payload: payload(r.ResponseSize)}, nil
}

func (s *testService) StreamingOutputCall(r *testgrpc.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range r.ResponseParameters {
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
			return err
		}
	}
	return echoStatus(r.ResponseStatus)
}

func (s *testService) StreamingInputCall(st grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	var total int32
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: total})
		}
		if err != nil {
			return err
		}
		total += int32(len(r.Payload.GetBody()))
	}
}

func (s *testService) FullDuplexCall(st grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(r.ResponseStatus); err != nil {
			return err
		}
		for _, p := range r.ResponseParameters {
			if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
				return err
			}
		}
	}
}

func startGRPCApp(t *testing.T, svc *testService) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	testgrpc.RegisterTestServiceServer(srv, svc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestGRPCThroughMeshedPair(t *testing.T) {
	svc := &testService{deadlines: make(chan time.Duration, 1)}
	p := startPair(t, []app{{name: "grpc", protocol: "grpc", addr: startGRPCApp(t, svc)}}, "")
	conn, err := grpc.NewClient(p.listen["grpc"], grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := testgrpc.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("unary with trailers", func(t *testing.T) {
		var trailer metadata.MD
		resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 10, Payload: payload(10)}, grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Payload.Body) != 10 || trailer.Get("x-trailer")[0] != "t1" {
			t.Fatalf("payload %d bytes, trailer %v", len(resp.Payload.Body), trailer)
		}
	})
	t.Run("large messages both ways", func(t *testing.T) {
		resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 4 << 20, Payload: payload(4 << 20)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Payload.Body) != 4<<20 {
			t.Fatalf("got %d bytes", len(resp.Payload.Body))
		}
	})
	t.Run("statuses and messages preserved", func(t *testing.T) {
		for _, code := range []codes.Code{codes.NotFound, codes.Unavailable, codes.PermissionDenied, codes.Internal, codes.ResourceExhausted} {
			msg := "app says " + code.String() + " – ünïcode %"
			_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(code), Message: msg}})
			st, _ := status.FromError(err)
			if st.Code() != code || st.Message() != msg {
				t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), code, msg)
			}
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		st, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
			ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}, {Size: 100}, {Size: 100000}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for {
			r, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(r.Payload.Body))
		}
		if len(sizes) != 3 || sizes[2] != 100000 {
			t.Fatalf("sizes %v", sizes)
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		st, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int32{10, 20, 30000} {
			if err := st.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(n)}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := st.CloseAndRecv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.AggregatedPayloadSize != 30030 {
			t.Fatalf("aggregated %d", resp.AggregatedPayloadSize)
		}
	})
	t.Run("bidi ping-pong", func(t *testing.T) {
		st, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := int32(1); i <= 5; i++ {
			if err := st.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: i * 7}}}); err != nil {
				t.Fatal(err)
			}
			r, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Payload.Body) != int(i*7) {
				t.Fatalf("ping %d: pong of %d bytes", i, len(r.Payload.Body))
			}
		}
		st.CloseSend()
		if _, err := st.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("end of stream: %v", err)
		}
	})
	t.Run("bidi status mid-stream", func(t *testing.T) {
		st, _ := c.FullDuplexCall(ctx)
		st.Send(&testgrpc.StreamingOutputCallRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.Aborted), Message: "stop"}})
		_, err := st.Recv()
		if s, _ := status.FromError(err); s.Code() != codes.Aborted || s.Message() != "stop" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("cancellation reaches the server", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		st, err := c.FullDuplexCall(cctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}}})
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		ccancel()
		if _, err := st.Recv(); status.Code(err) != codes.Canceled {
			t.Fatalf("after cancel: %v", err)
		}
	})
	t.Run("deadline propagated and honoured", func(t *testing.T) {
		select {
		case <-svc.deadlines: // left by an earlier call
		default:
		}
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		defer dcancel()
		if _, err := c.UnaryCall(dctx, &testgrpc.SimpleRequest{}); err != nil {
			t.Fatal(err)
		}
		select {
		case left := <-svc.deadlines:
			if left <= 0 || left > 2*time.Second {
				t.Fatalf("server saw deadline %v, want within (0, 2s]", left)
			}
		default:
			t.Fatal("server saw no deadline: grpc-timeout was not propagated")
		}
		sctx, scancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "sleep", "10s"), 300*time.Millisecond)
		defer scancel()
		_, err := c.UnaryCall(sctx, &testgrpc.SimpleRequest{})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("sleeping call: %v, want DeadlineExceeded", err)
		}
	})

	v, ok := metric(t, p.clientAdm, "weft_responses_total", `service="grpc"`, `grpc_status="5"`)
	if !ok || v < 1 {
		t.Errorf("NOT_FOUND not counted by grpc_status (got %v)", v)
	}
}

func TestGRPCNoEndpointsIsUnavailable(t *testing.T) {
	p := startPair(t, []app{{name: "empty", protocol: "grpc"}}, "")
	conn, err := grpc.NewClient(p.listen["empty"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "empty has no endpoints") {
		t.Fatalf("got %v %q, want UNAVAILABLE naming the service", st.Code(), st.Message())
	}
}

func TestH2CThroughMeshedPair(t *testing.T) {
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appSrv := &http.Server{Protocols: h2c, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Proto", r.Proto)
		io.Copy(w, r.Body)
	})}
	go appSrv.Serve(ln)
	t.Cleanup(func() { appSrv.Close() })
	p := startPair(t, []app{{name: "h2", addr: ln.Addr().String()}}, "")
	tr := &http.Transport{Protocols: h2c}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Post(p.url("h2", "/"), "text/plain", strings.NewReader("over h2c"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "over h2c" || resp.Header.Get("X-App-Proto") != "HTTP/2.0" || resp.Proto != "HTTP/2.0" {
		t.Fatalf("body %q, client got %s, application saw %s; want HTTP/2.0 end to end", body, resp.Proto, resp.Header.Get("X-App-Proto"))
	}
}

// TestGRPCRouteRetryAndFault: a GRPCRoute rule matched by service and
// method retries UNAVAILABLE (a trailers-only status), and another rule
// injects a gRPC status for one method only.
func TestGRPCRouteRetryAndFault(t *testing.T) {
	svc := &testService{}
	p := startPair(t, []app{{name: "grpc", protocol: "grpc", addr: startGRPCApp(t, svc), more: `  routes:
  - route: default/unary-retry
    kind: grpc
    matches: [{grpc: {service: grpc.testing.TestService, method: UnaryCall}}]
    retry: {grpc_codes: [14], backoff_base: 1ms, backoff_max: 2ms}
  - route: default/empty-fault
    kind: grpc
    matches: [{grpc: {method: EmptyCall}}]
    fault: {abort_percent: 100, abort_http_status: 503, abort_grpc_status: 8}
`}}, "")
	conn, err := grpc.NewClient(p.listen["grpc"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := testgrpc.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc.failNext.Store(1)
	if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("one UNAVAILABLE should have been retried: %v", err)
	}
	if n := svc.calls.Load(); n != 2 {
		t.Fatalf("server saw %d calls, want 2 (one retry)", n)
	}
	_, err = c.EmptyCall(ctx, &testgrpc.Empty{})
	if s, _ := status.FromError(err); s.Code() != codes.ResourceExhausted {
		t.Fatalf("EmptyCall: %v, want the injected RESOURCE_EXHAUSTED", err)
	}
	if v, _ := metric(t, p.clientAdm, "weft_requests_total", `route="default/unary-retry"`); v != 1 {
		t.Errorf("unary call not counted under its route: %v", v)
	}
}
