package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// DefaultDebounce is the Options.Debounce used when it is zero.
const DefaultDebounce = 100 * time.Millisecond

// maxDebounceFactor bounds how long a steady stream of Sets can hold a push
// back: at most this many Debounce periods after the first Set of a burst.
const maxDebounceFactor = 10

// Options configure a Server.
type Options struct {
	// Debounce coalesces bursts of Set for the same identity: a push waits
	// until Sets pause for Debounce (but at most 10×Debounce after the first
	// of the burst). Zero means DefaultDebounce; negative pushes every
	// change at once. The first snapshot of a new stream is never delayed.
	Debounce time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Validate, when set, checks a snapshot before it is served (the
	// control plane passes config.Compile-based validation). A snapshot that
	// fails is not sent: the reason is logged and shows in Status
	// (WithheldError), and the proxy keeps its current config. Validate must
	// not modify the config and is called once per stream and version.
	Validate func(*weftv1.ProxyConfig) error
	// OnConnect and OnDisconnect, when set, are called as a proxy stream
	// starts (after its node is checked) and ends, e.g. for on-demand
	// discovery. The node must not be modified.
	OnConnect, OnDisconnect func(node *discoveryv1.Node)
	// OnWatch, when set, is called when a proxy asks for more services: with
	// the node's watched_services (plus any watch_services) of its first
	// message, then with every later request's watch_services. It runs on
	// the stream's receive path: keep it quick.
	OnWatch func(node *discoveryv1.Node, services []string)
	// Authenticate, when set, decides whether the caller of a stream may
	// receive the config of node (e.g. the SPIFFE ID of its client
	// certificate must be node.identity). Its error, a gRPC status, ends
	// the stream before anything is sent.
	Authenticate func(ctx context.Context, node *discoveryv1.Node) error
	// Admit, when set, is called after Authenticate with the stream's node
	// and its first request, for what a proxy asks of the control plane
	// that may be refused (a workload registration). Its error, a gRPC
	// status, ends the stream before anything is sent, as Authenticate's
	// does; once it returned nil, OnDisconnect is called when the stream
	// ends.
	Admit func(ctx context.Context, node *discoveryv1.Node, first *discoveryv1.DiscoveryRequest) error
	// OnRequest, when set, is called with every request of a stream after
	// the first (which Admit receives), in order, on the stream's receive
	// path: keep it quick.
	//
	// Admit, OnConnect, OnWatch, OnRequest and OnDisconnect receive the
	// same *Node for every call about one stream, and a distinct one for
	// each stream: it may serve as the stream's key.
	OnRequest func(node *discoveryv1.Node, req *discoveryv1.DiscoveryRequest)
}

// Server serves the Discovery service from a Cache.
type Server struct {
	cache  *Cache
	o      Options
	log    *slog.Logger
	nonces atomic.Uint64
}

// NewServer returns a server of c's snapshots.
func NewServer(c *Cache, o Options) *Server {
	if o.Debounce == 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Server{cache: c, o: o, log: o.Logger}
}

// Register registers the Discovery service on g.
func (s *Server) Register(g *grpc.Server) {
	discoveryv1.RegisterDiscoveryServer(g, &service{s: s})
}

// service adapts Server to discoveryv1.DiscoveryServer, so the generated
// interface's methods stay out of Server's API.
type service struct {
	discoveryv1.UnimplementedDiscoveryServer
	s *Server
}

func (v *service) Stream(stream discoveryv1.Discovery_StreamServer) error {
	return v.s.stream(stream)
}

// errClientDone ends a stream the proxy closed its side of.
var errClientDone = errors.New("proxy closed the stream")

func (s *Server) stream(stream discoveryv1.Discovery_StreamServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "the first DiscoveryRequest must carry node: the stream closed before any")
	}
	if err != nil {
		return fmt.Errorf("receiving the first request: %w", err)
	}
	switch {
	case first.GetNode() == nil:
		return status.Error(codes.InvalidArgument, "the first DiscoveryRequest must carry node (with node.identity)")
	case first.GetNode().GetIdentity() == "":
		return status.Error(codes.InvalidArgument, "node.identity is empty: the first DiscoveryRequest must name the proxy's SPIFFE ID")
	}
	node := proto.Clone(first.GetNode()).(*discoveryv1.Node)
	log := s.log.With("identity", node.GetIdentity(), "node_id", node.GetId())
	if s.o.Authenticate != nil {
		if err := s.o.Authenticate(stream.Context(), node); err != nil {
			log.Warn("proxy stream refused", "error", err)
			return err
		}
	}
	if s.o.Admit != nil {
		if err := s.o.Admit(stream.Context(), node, first); err != nil {
			log.Warn("proxy stream refused", "error", err)
			return err
		}
	}

	w := s.cache.connect(node, time.Now())
	defer s.cache.disconnect(w)
	log.Info("proxy connected", "namespace", node.GetNamespace(), "proxy_version", node.GetProxyVersion())
	defer log.Info("proxy disconnected")
	if s.o.OnConnect != nil {
		s.o.OnConnect(node)
	}
	if s.o.OnDisconnect != nil {
		defer s.o.OnDisconnect(node)
	}
	if s.o.OnWatch != nil {
		if ws := append(slices.Clone(node.GetWatchedServices()), first.GetWatchServices()...); len(ws) > 0 {
			s.o.OnWatch(node, ws)
		}
	}

	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	// The receive goroutine ends when the stream does: gRPC cancels the
	// stream's context as soon as this handler returns.
	go func() { cancel(s.receive(stream, w, node, log)) }()

	err = s.send(ctx, stream, w, log)
	if errors.Is(err, errClientDone) {
		return nil
	}
	return err
}

// receive handles the proxy's answers until the stream ends and says why.
func (s *Server) receive(stream discoveryv1.Discovery_StreamServer, w *conn, node *discoveryv1.Node, log *slog.Logger) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errClientDone
		}
		if err != nil {
			return fmt.Errorf("receiving from the proxy: %w", err)
		}
		if len(req.GetWatchServices()) > 0 && s.o.OnWatch != nil {
			s.o.OnWatch(node, req.GetWatchServices())
		}
		if s.o.OnRequest != nil {
			s.o.OnRequest(node, req)
		}
		kind := ack
		switch {
		case req.GetFullResync():
			kind = fullResync
		case req.GetResponseNonce() == "":
			continue // not an answer, e.g. only watch_services
		case req.GetErrorDetail() != "":
			kind = nack
		}
		version, ok := s.cache.answer(w, req.GetResponseNonce(), kind, req.GetErrorDetail(), time.Now())
		switch {
		case !ok:
			log.Debug("stale answer ignored", "nonce", req.GetResponseNonce(), "version", req.GetVersion())
		case kind == fullResync:
			log.Debug("proxy asked for a full config", "version", version, "running_version", req.GetVersion())
		case kind == nack:
			log.Warn("proxy rejected config", "version", version, "detail", req.GetErrorDetail())
		default:
			log.Debug("proxy acknowledged config", "version", version)
		}
	}
}

// send sends the current snapshot, then every later one, until ctx ends:
// incremental against the snapshot the proxy last acknowledged when it can
// (see response), else whole.
func (s *Server) send(ctx context.Context, stream discoveryv1.Discovery_StreamServer, w *conn, log *slog.Logger) error {
	var sent, withheld string // versions already sent / found invalid on this stream
	var sentTrust *Trust
	for {
		trust := s.cache.currentTrust()
		base, resync := s.cache.base(w)
		if snap := s.cache.snapshot(w.identity); snap != nil && (snap.version != sent || trust != sentTrust || resync) && snap.version != withheld {
			if err := s.check(snap); err != nil {
				withheld = snap.version
				s.cache.withheld(w, snap.version, err)
				log.Error("config withheld; the proxy keeps its current one", "version", snap.version, "error", err)
			} else {
				nonce := strconv.FormatUint(s.nonces.Add(1), 36)
				resp, d, incremental := response(base, snap)
				resp.Nonce = nonce
				if trust != nil {
					resp.TrustAnchors = trust.Anchors
					resp.IssuerFingerprint = trust.IssuerFingerprint
				}
				s.cache.sending(w, snap, nonce, !incremental)
				if err := stream.Send(resp); err != nil {
					return fmt.Errorf("sending version %s: %w", snap.version, err)
				}
				sent, sentTrust = snap.version, trust
				logSent(ctx, log, resp, d, incremental, len(snap.cfg.GetServices()))
			}
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-w.wakeResync:
			continue // the proxy waits for a full config: no debounce
		case <-w.notify:
		}
		if err := s.debounce(ctx, w.notify, w.wakeResync); err != nil {
			return err
		}
	}
}

// logSent logs, at debug, what a response carried.
func logSent(ctx context.Context, log *slog.Logger, resp *discoveryv1.DiscoveryResponse, d delta, incremental bool, services int) {
	if !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	if !incremental {
		log.Debug("config sent", "update", "full", "version", resp.GetVersion(), "nonce", resp.GetNonce(),
			"services", services, "bytes", proto.Size(resp))
		return
	}
	log.Debug("config sent", "update", "incremental", "version", resp.GetVersion(), "nonce", resp.GetNonce(),
		"base_version", resp.GetBaseVersion(), "services", services, "services_updated", len(d.updated),
		"services_removed", len(d.removed), "bytes", proto.Size(resp))
}

func (s *Server) check(snap *snapshot) error {
	if snap.err != nil {
		return snap.err
	}
	if s.o.Validate == nil {
		return nil
	}
	if err := s.o.Validate(snap.cfg); err != nil {
		return fmt.Errorf("validating the config: %w", err)
	}
	return nil
}

// debounce waits until notify stays quiet for Debounce, or for at most
// maxDebounceFactor×Debounce, or until resync fires: a proxy waiting for a
// full config is not kept waiting.
func (s *Server) debounce(ctx context.Context, notify <-chan struct{}, resync chan struct{}) error {
	if s.o.Debounce < 0 {
		return nil
	}
	limit := time.NewTimer(maxDebounceFactor * s.o.Debounce)
	defer limit.Stop()
	quiet := time.NewTimer(s.o.Debounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-notify:
			quiet.Reset(s.o.Debounce)
		case <-quiet.C:
			return nil
		case <-limit.C:
			return nil
		case <-resync:
			return nil // conn.resync says it to send
		}
	}
}
