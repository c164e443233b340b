package configclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// Default reconnect back-off.
const (
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
)

// Options configure a Client.
type Options struct {
	// Address of the control plane, host:port.
	Address string
	// Dial options: transport credentials etc.
	Dial []grpc.DialOption
	// Node says who the proxy is; Node.Identity is required. Its
	// watched_services are the initial set Watch adds to.
	Node *discoveryv1.Node
	// Apply validates and swaps in a config, always a whole one (the client
	// rebuilds it from an incremental response). An error is a rejection:
	// it is logged and sent back as a NACK with err.Error(), and the proxy
	// keeps its previous config. Apply is never called concurrently, and
	// must not modify cfg: the client keeps the config last applied as the
	// base of the next incremental response (a modified one fails the
	// version check, which costs a full config).
	Apply func(ctx context.Context, cfg *weftv1.ProxyConfig, version string) error
	// Trust, when set, receives the trust anchors (DER) and issuer
	// fingerprint of every response that carries them, before Apply (also
	// when the config itself is unchanged): an anchor or issuer rotation
	// travels this way.
	Trust func(anchors [][]byte, issuerFingerprint string)
	// Backoff bounds the reconnect delays (full jitter: each delay is
	// uniform in [0, min(Max, Initial×2^attempt))).
	Backoff Backoff
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Rand returns a number in [0, 1) for the jitter; defaults to
	// math/rand/v2's Float64. For tests.
	Rand func() float64
}

// Backoff is the reconnect back-off; zero fields take the defaults
// (DefaultBackoffInitial, DefaultBackoffMax).
type Backoff struct{ Initial, Max time.Duration }

// State is the client's state, for /ready and /config_dump.
type State struct {
	// Connected is true while a stream to the control plane is open.
	Connected bool
	// LastVersion is the version of the config last applied; empty before
	// the first.
	LastVersion string
	// LastError is the latest problem: a rejected config or a failed
	// stream. It is cleared when the next snapshot arrives.
	LastError string
	// LastChange is when LastVersion was applied.
	LastChange time.Time
}

// Client keeps a proxy's config current from the control plane.
type Client struct {
	o       Options
	log     *slog.Logger
	running atomic.Bool
	wake    chan struct{} // at most one pending "something to send"

	mu      sync.Mutex
	watched []string // every service asked for, in order; never shrinks
	pending []string // watched but not yet sent on the current stream
	answer  *discoveryv1.DiscoveryRequest
	state   State
	// The last rejected version and why, to reject it again unchanged.
	rejected, rejectedDetail string
	// applied is the config last applied, of version state.LastVersion:
	// the base of incremental responses. Never modified.
	applied *weftv1.ProxyConfig
	// The registered workload's health (SetHealth), and whether the open
	// stream has yet to hear it.
	health      discoveryv1.Health
	healthCause string
	healthDirty bool
	// leaving is set by Deregister: the next send is the deregister, no
	// config is applied any more, and Run ends with the stream.
	leaving      bool
	deregistered bool // the deregister was sent
	left         chan struct{}
	leftOnce     sync.Once
}

// ErrNotConnected is returned by Deregister when no stream is open: the
// control plane removes the workload after its grace period instead.
var ErrNotConnected = errors.New("configclient: not connected to the control plane")

// New checks o and returns a client; Run starts it.
func New(o Options) (*Client, error) {
	switch {
	case o.Address == "":
		return nil, errors.New("configclient: Options.Address is empty: give the control plane's host:port")
	case o.Node.GetIdentity() == "":
		return nil, errors.New("configclient: Options.Node.Identity is empty: give the proxy's SPIFFE ID")
	case o.Apply == nil:
		return nil, errors.New("configclient: Options.Apply is nil")
	}
	// grpc.NewClient does not connect: this only checks the address and the
	// dial options (e.g. missing transport credentials) once, up front.
	cc, err := grpc.NewClient(o.Address, o.Dial...)
	if err != nil {
		return nil, fmt.Errorf("configclient: checking the dial options for %s: %w", o.Address, err)
	}
	if err := cc.Close(); err != nil {
		return nil, fmt.Errorf("configclient: closing the trial client for %s: %w", o.Address, err)
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff.Initial = DefaultBackoffInitial
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = DefaultBackoffMax
	}
	o.Backoff.Max = max(o.Backoff.Max, o.Backoff.Initial)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	o.Node = proto.Clone(o.Node).(*discoveryv1.Node)
	c := &Client{
		o:    o,
		log:  o.Logger.With("control_plane", o.Address),
		wake: make(chan struct{}, 1),
		left: make(chan struct{}),
	}
	for _, s := range o.Node.GetWatchedServices() {
		if s != "" && !slices.Contains(c.watched, s) {
			c.watched = append(c.watched, s)
		}
	}
	return c, nil
}

// Run keeps one stream open until ctx is done: it connects, sends the node,
// applies each snapshot via Apply and answers ACK or NACK, and on any stream
// error reconnects with back-off and jitter (reset after a healthy stream:
// one that delivered a snapshot or stayed open for Backoff.Max). It returns
// nil when ctx ends, and an error only when Run is already running.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("configclient: Run is already running")
	}
	defer c.running.Store(false)
	defer c.leftOnce.Do(func() { close(c.left) })
	attempt := 0
	for {
		if c.isLeaving() {
			return nil
		}
		healthy, err := c.session(ctx)
		if c.isLeaving() {
			c.disconnected(ctx, nil)
			return nil
		}
		c.disconnected(ctx, err)
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			attempt = 0
		}
		delay := c.backoff(attempt)
		attempt++
		if code := status.Code(err); code == codes.InvalidArgument || code == codes.AlreadyExists || code == codes.PermissionDenied || code == codes.Unauthenticated {
			c.log.Error("the control plane refused this proxy's stream; retrying", "error", err, "retry_in", delay, "attempt", attempt)
		} else {
			c.log.Warn("control plane stream ended; reconnecting", "error", err, "retry_in", delay, "attempt", attempt)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Watch asks the control plane for more services (on-demand discovery). New
// names are sent on the open stream as watch_services, and the whole set is
// re-sent after every reconnect. Safe to call from any goroutine, before or
// during Run.
func (c *Client) Watch(services ...string) {
	c.mu.Lock()
	added := false
	for _, s := range services {
		if s != "" && !slices.Contains(c.watched, s) {
			c.watched = append(c.watched, s)
			c.pending = append(c.pending, s)
			added = true
		}
	}
	c.mu.Unlock()
	if added {
		c.signal()
	}
}

// SetHealth records the registered workload's health and sends it to the
// control plane: at once on the open stream if it changed, and on the first
// message of every later stream. Safe to call from any goroutine, before or
// during Run.
func (c *Client) SetHealth(h discoveryv1.Health, detail string) {
	c.mu.Lock()
	if h == c.health && detail == c.healthCause {
		c.mu.Unlock()
		return
	}
	c.health, c.healthCause, c.healthDirty = h, detail, true
	c.mu.Unlock()
	c.signal()
}

// Deregister tells the control plane that the proxy is stopping, so that
// it removes the registered workload at once: it sends deregister on the
// open stream and closes it, and Run then returns. From the call on, no
// config is applied and no stream is opened again. It returns once the
// control plane has closed the stream, ErrNotConnected at once when no
// stream is open, or ctx's error; a proxy calls it when it starts draining,
// with a short timeout.
func (c *Client) Deregister(ctx context.Context) error {
	c.mu.Lock()
	c.leaving = true
	connected := c.state.Connected
	c.mu.Unlock()
	// A stream about to count as connected sends the deregister too.
	c.signal()
	if !connected {
		return ErrNotConnected
	}
	select {
	case <-c.left:
	case <-ctx.Done():
		return fmt.Errorf("configclient: deregistering: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.deregistered {
		return errors.New("configclient: deregistering: the stream ended before the deregister was sent")
	}
	return nil
}

func (c *Client) isLeaving() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaving
}

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// backoff returns the delay before reconnect attempt n (0-based).
func (c *Client) backoff(n int) time.Duration {
	d := c.o.Backoff.Initial
	for i := 0; i < n && d < c.o.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, c.o.Backoff.Max)
	return time.Duration(c.o.Rand() * float64(d))
}

// hello is the first message of a stream: the node with every watched
// service. It starts the stream's bookkeeping afresh.
func (c *Client) hello() *discoveryv1.DiscoveryRequest {
	node := proto.Clone(c.o.Node).(*discoveryv1.Node)
	c.mu.Lock()
	defer c.mu.Unlock()
	node.WatchedServices = slices.Clone(c.watched)
	node.SupportsIncremental = true
	c.pending, c.answer, c.healthDirty = nil, nil, false
	return &discoveryv1.DiscoveryRequest{Node: node, Health: c.health, HealthDetail: c.healthCause}
}

// session runs one stream until it fails or ctx ends. healthy says whether
// it delivered a snapshot or stayed open for Backoff.Max.
func (c *Client) session(ctx context.Context) (healthy bool, err error) {
	start := time.Now()
	cc, err := grpc.NewClient(c.o.Address, c.o.Dial...)
	if err != nil {
		return false, fmt.Errorf("creating the client for %s: %w", c.o.Address, err)
	}
	defer func() { _ = cc.Close() }() // closing only releases resources here

	sctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	stream, err := discoveryv1.NewDiscoveryClient(cc).Stream(sctx)
	if err != nil {
		return false, fmt.Errorf("opening the discovery stream: %w", err)
	}
	if err := stream.Send(c.hello()); err != nil {
		if errors.Is(err, io.EOF) { // the stream failed: Recv says why
			_, err = stream.Recv()
		}
		return false, fmt.Errorf("sending the node: %w", err)
	}
	c.connected()
	wg.Go(func() { cancel(c.send(sctx, stream)) })

	for {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil && sctx.Err() != nil {
				err = context.Cause(sctx) // the send side failed first
			}
			return healthy || time.Since(start) >= c.o.Backoff.Max, fmt.Errorf("receiving from the control plane: %w", err)
		}
		healthy = true
		c.handle(ctx, resp)
	}
}

// send sends the pending answer, watched services and health until ctx
// ends or a send fails; after Deregister, the deregister, and then nothing.
func (c *Client) send(ctx context.Context, stream discoveryv1.Discovery_StreamClient) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		}
		c.mu.Lock()
		req, watch := c.answer, c.pending
		c.answer, c.pending = nil, nil
		health, cause, sendHealth := c.health, c.healthCause, c.healthDirty
		c.healthDirty = false
		leaving := c.leaving
		c.mu.Unlock()
		if leaving {
			return c.leave(ctx, stream)
		}
		if req == nil && len(watch) == 0 && !sendHealth {
			continue
		}
		if req == nil {
			req = &discoveryv1.DiscoveryRequest{}
		}
		req.WatchServices = watch
		if sendHealth {
			req.Health, req.HealthDetail = health, cause
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("sending to the control plane: %w", err)
		}
	}
}

// leave sends the deregister and closes the stream's sending side; the
// control plane then ends the stream. It waits for ctx so as not to cancel
// the stream before the control plane got the message.
func (c *Client) leave(ctx context.Context, stream discoveryv1.Discovery_StreamClient) error {
	if err := stream.Send(&discoveryv1.DiscoveryRequest{Deregister: true}); err != nil {
		return fmt.Errorf("sending deregister to the control plane: %w", err)
	}
	c.mu.Lock()
	c.deregistered = true
	c.mu.Unlock()
	c.log.Info("deregister sent; closing the stream")
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("closing the stream after deregister: %w", err)
	}
	<-ctx.Done()
	return nil
}

// handle applies one snapshot (unless it is the running or the last
// rejected version) and queues the answer: an ACK, a NACK, or a request for
// a full config when an incremental response does not apply to the running
// config.
func (c *Client) handle(ctx context.Context, resp *discoveryv1.DiscoveryResponse) {
	if c.isLeaving() {
		// Deregistering changes this proxy's own config (its workload is
		// gone); a draining proxy keeps the one it runs.
		return
	}
	version := resp.GetVersion()
	if c.o.Trust != nil && (len(resp.GetTrustAnchors()) > 0 || resp.GetIssuerFingerprint() != "") {
		c.o.Trust(resp.GetTrustAnchors(), resp.GetIssuerFingerprint())
	}
	c.mu.Lock()
	running, rejected, rejectedDetail, base := c.state.LastVersion, c.rejected, c.rejectedDetail, c.applied
	c.state.LastError = ""
	c.mu.Unlock()

	var detail string
	var applied *weftv1.ProxyConfig // set when Apply accepted it
	resync := false
	switch {
	case resp.GetConfig() == nil:
		detail = "the response carries no config"
	case running != "" && version == running:
		c.log.Debug("config unchanged", "version", version)
	case rejected != "" && version == rejected:
		detail = rejectedDetail
		c.log.Debug("config rejected before; rejecting again", "version", version)
	default:
		cfg := resp.GetConfig()
		if resp.GetBaseVersion() != "" {
			var err error
			if cfg, err = rebuild(resp, running, base); err != nil {
				resync = true
				c.log.Info("incremental config not applicable; asking for the whole config", "version", version,
					"base_version", resp.GetBaseVersion(), "running_version", running, "error", err)
				break
			}
			c.log.Debug("incremental config rebuilt", "version", version, "base_version", resp.GetBaseVersion(),
				"services", len(cfg.GetServices()), "services_updated", len(resp.GetServicesUpdated()),
				"services_removed", len(resp.GetServicesRemoved()))
		}
		err := c.o.Apply(ctx, cfg, version)
		if err != nil && ctx.Err() != nil {
			return // stopping: not a verdict on the config
		}
		if err != nil {
			detail = err.Error()
			if detail == "" {
				detail = "rejected"
			}
			c.log.Warn("config rejected; keeping the running config", "version", version, "running_version", running, "error", err)
		} else {
			applied = cfg
			c.log.Info("config applied", "version", version)
		}
	}

	c.mu.Lock()
	switch {
	case resync:
		c.answer = &discoveryv1.DiscoveryRequest{Version: running, ResponseNonce: resp.GetNonce(), FullResync: true}
	case detail != "":
		c.rejected, c.rejectedDetail = version, detail
		c.state.LastError = fmt.Sprintf("config version %s rejected: %s", version, detail)
	case applied != nil:
		c.state.LastVersion, c.state.LastChange = version, time.Now()
		c.rejected, c.rejectedDetail = "", ""
		c.applied = applied
	}
	if !resync {
		c.answer = &discoveryv1.DiscoveryRequest{Version: version, ResponseNonce: resp.GetNonce(), ErrorDetail: detail}
	}
	c.mu.Unlock()
	c.signal()
}

func (c *Client) connected() {
	c.mu.Lock()
	c.state.Connected = true
	c.mu.Unlock()
	c.log.Info("connected to the control plane")
}

func (c *Client) disconnected(ctx context.Context, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.Connected = false
	if ctx.Err() == nil && err != nil {
		c.state.LastError = err.Error()
	}
}
