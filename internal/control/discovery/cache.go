package discovery

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/configversion"
)

// Cache holds the current snapshot for each proxy, by node identity (SPIFFE
// ID string), and the status of every connected proxy stream. Safe for
// concurrent use. A Cache is served by a Server (NewServer).
type Cache struct {
	mu    sync.Mutex
	snaps map[string]*snapshot
	conns map[string]map[*conn]struct{} // by identity
	trust *Trust
}

// Trust is the mesh-wide identity material every response carries: the
// trust anchors and the fingerprint of the current issuer.
type Trust struct {
	// Anchors are the trust anchors, DER.
	Anchors [][]byte
	// IssuerFingerprint is the hex SHA-256 of the issuer certificate.
	IssuerFingerprint string
	version           string
}

// SetTrust makes t the trust material sent to every proxy; connected
// proxies get it at once (with their current config). Setting the same
// material again pushes nothing.
func (c *Cache) SetTrust(t Trust) {
	h := sha256.New()
	for _, a := range t.Anchors {
		h.Write(a)
	}
	h.Write([]byte{0})
	h.Write([]byte(t.IssuerFingerprint))
	t.version = hex.EncodeToString(h.Sum(nil))[:16]
	t.Anchors = slices.Clone(t.Anchors)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trust != nil && c.trust.version == t.version {
		return
	}
	c.trust = &t
	for _, ws := range c.conns {
		for w := range ws {
			wake(w.notify)
		}
	}
}

// currentTrust returns the trust material; nil when none was set.
func (c *Cache) currentTrust() *Trust {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trust
}

// ProxyStatus is what the control plane knows about one connected proxy
// stream (one proxy instance), for `weft check` and status pages.
type ProxyStatus struct {
	// Node is the node the proxy sent on its first message.
	Node           *discoveryv1.Node
	ConnectedSince time.Time
	// SentVersion is the latest version sent on the stream.
	SentVersion string
	// AckedVersion is the latest version the proxy acknowledged, at LastAckAt.
	AckedVersion string
	LastAckAt    time.Time
	// LastError is the detail of the proxy's latest NACK, of RejectedVersion.
	// Both are cleared when the proxy acknowledges a later version.
	LastError       string
	RejectedVersion string
	// WithheldError says why the current snapshot for this proxy, version
	// WithheldVersion, is not sent (it failed Options.Validate); empty when
	// nothing is withheld.
	WithheldVersion string
	WithheldError   string
}

// snapshot is one immutable versioned config. err is set when the config
// cannot be encoded; such a snapshot is never sent. A snapshot stays in
// memory while the cache holds it or a stream may base an incremental
// response on it (conn.acked, conn.inflight).
type snapshot struct {
	version string
	cfg     *weftv1.ProxyConfig
	err     error

	// The index of services for incremental responses, built on first use
	// (see index).
	indexOnce sync.Once
	idx       *serviceIndex
}

// conn is one connected stream. Its fields are guarded by Cache.mu, except
// notify, which carries at most one pending "the snapshot changed", and
// wakeResync, which carries at most one pending "the proxy asked for a full
// config".
type conn struct {
	identity string // immutable
	// incremental: the proxy understands incremental responses
	// (node.supports_incremental). Immutable.
	incremental bool
	notify      chan struct{}
	wakeResync  chan struct{}
	status      ProxyStatus
	// nonce is the latest one sent, for version nonceVersion, of snapshot
	// inflight (until answered); answered says whether the proxy has
	// answered it.
	nonce        string
	nonceVersion string
	inflight     *snapshot
	answered     bool
	// acked is the snapshot the proxy last acknowledged on this stream: the
	// base of incremental responses. Only the latest is kept, and the conn
	// goes (with it) when the stream ends.
	acked *snapshot
	// resync is set when the proxy asked for a full config; cleared by the
	// next send.
	resync bool
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		snaps: map[string]*snapshot{},
		conns: map[string]map[*conn]struct{}{},
	}
}

// NodeKey is the key a node's snapshot is kept under: its identity and, when
// set, its instance id ("<identity>#<id>"), so that two workloads of one
// service account, which may differ in ports, get configs of their own.
func NodeKey(n *discoveryv1.Node) string {
	if n.GetId() == "" {
		return n.GetIdentity()
	}
	return n.GetIdentity() + "#" + n.GetId()
}

// Set makes cfg the snapshot for the proxies of key (see NodeKey) and returns its
// version: the first 16 hex digits of the SHA-256 of cfg's deterministic
// encoding. Setting the config that is already current is a no-op that pushes
// nothing. cfg is copied; a nil cfg is an empty ProxyConfig. A config that
// cannot be encoded (a string field that is not UTF-8) is kept but never sent,
// and the reason shows in Status (WithheldError).
func (c *Cache) Set(identity string, cfg *weftv1.ProxyConfig) (version string) {
	s := newSnapshot(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.snaps[identity]; ok && cur.version == s.version {
		return s.version
	}
	c.snaps[identity] = s
	for w := range c.conns[identity] {
		wake(w.notify) // a notification already pending covers this one
	}
	return s.version
}

func newSnapshot(cfg *weftv1.ProxyConfig) *snapshot {
	if cfg == nil {
		cfg = &weftv1.ProxyConfig{}
	}
	cfg = proto.Clone(cfg).(*weftv1.ProxyConfig)
	version, err := configversion.Of(cfg)
	if err != nil {
		// Still give distinct bad configs distinct versions, so a later good
		// one is never mistaken for an identical Set.
		sum := sha256.Sum256([]byte(cfg.String()))
		return &snapshot{
			version: "invalid-" + hex.EncodeToString(sum[:])[:configversion.Len],
			cfg:     cfg,
			err:     err,
		}
	}
	return &snapshot{version: version, cfg: cfg}
}

// Delete forgets the snapshot for identity. Connected proxies keep the config
// they run; a later Set sends them the new one.
func (c *Cache) Delete(identity string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.snaps, identity)
}

// Status lists every connected proxy stream, ordered by identity, instance
// id and connection time.
func (c *Cache) Status() []ProxyStatus {
	c.mu.Lock()
	out := make([]ProxyStatus, 0, len(c.conns))
	for _, set := range c.conns {
		for w := range set {
			st := w.status
			st.Node = proto.Clone(st.Node).(*discoveryv1.Node)
			out = append(out, st)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b ProxyStatus) int {
		return cmp.Or(
			cmp.Compare(a.Node.GetIdentity(), b.Node.GetIdentity()),
			cmp.Compare(a.Node.GetId(), b.Node.GetId()),
			a.ConnectedSince.Compare(b.ConnectedSince),
		)
	})
	return out
}

// snapshot returns the current snapshot for identity, or nil.
func (c *Cache) snapshot(identity string) *snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snaps[identity]
}

// connect registers a stream of node; from then on every Set for its
// identity notifies it.
func (c *Cache) connect(node *discoveryv1.Node, now time.Time) *conn {
	w := &conn{
		identity:    NodeKey(node),
		incremental: node.GetSupportsIncremental(),
		notify:      make(chan struct{}, 1),
		wakeResync:  make(chan struct{}, 1),
		status:      ProxyStatus{Node: node, ConnectedSince: now},
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.conns[w.identity]
	if set == nil {
		set = map[*conn]struct{}{}
		c.conns[w.identity] = set
	}
	set[w] = struct{}{}
	return w
}

func (c *Cache) disconnect(w *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.conns[w.identity], w)
	if len(c.conns[w.identity]) == 0 {
		delete(c.conns, w.identity)
	}
}

// base returns the snapshot an incremental response to w may build on: the
// one the proxy last acknowledged, provided the proxy understands
// incremental responses, has answered every response sent (an unanswered
// one may be applied or not: only a full response is safe then) and asked
// for no full config since. nil: send a full config.
// resync says the proxy asked for one, which is then due even when the
// snapshot was sent already.
func (c *Cache) base(w *conn) (base *snapshot, resync bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.resync {
		return nil, true
	}
	if !w.incremental || (w.nonce != "" && !w.answered) {
		return nil, false
	}
	return w.acked, false
}

// sending records that snap goes out with nonce, whole when full; answers
// to any earlier nonce are stale from now on.
func (c *Cache) sending(w *conn, snap *snapshot, nonce string, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.nonce, w.nonceVersion, w.inflight, w.answered = nonce, snap.version, snap, false
	if full {
		w.resync = false
	}
	w.status.SentVersion = snap.version
	w.status.WithheldVersion, w.status.WithheldError = "", ""
}

func (c *Cache) withheld(w *conn, version string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.status.WithheldVersion, w.status.WithheldError = version, err.Error()
}

// answerKind is what a proxy's answer to a response says.
type answerKind int

const (
	ack answerKind = iota
	nack
	fullResync
)

// answer records the proxy's answer to nonce: an ACK (the acknowledged
// snapshot becomes the base of incremental responses), a NACK (the base
// stays), or a request for a full config. It returns the version of the
// response answered; ok is false for a stale or unknown nonce, or one
// answered already. A fullResync with no nonce is always honoured.
func (c *Cache) answer(w *conn, nonce string, kind answerKind, detail string, now time.Time) (version string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == fullResync && nonce == "" {
		w.resync = true
		wake(w.wakeResync)
		return "", true
	}
	if nonce == "" || nonce != w.nonce || w.answered {
		return "", false // stale, or answered already
	}
	w.answered = true
	inflight := w.inflight
	w.inflight = nil // answered: only the acknowledged one may stay
	switch kind {
	case fullResync:
		w.resync = true
		wake(w.wakeResync)
	case nack:
		w.status.LastError, w.status.RejectedVersion = detail, w.nonceVersion
	default:
		w.acked = inflight
		w.status.AckedVersion, w.status.LastAckAt = w.nonceVersion, now
		w.status.LastError, w.status.RejectedVersion = "", ""
	}
	return w.nonceVersion, true
}

// wake sends on a channel of capacity 1 unless a wake-up is pending.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
