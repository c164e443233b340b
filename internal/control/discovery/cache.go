package discovery

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
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
			select {
			case w.notify <- struct{}{}:
			default:
			}
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
// cannot be encoded; such a snapshot is never sent.
type snapshot struct {
	version string
	cfg     *weftv1.ProxyConfig
	err     error
}

// conn is one connected stream. Its fields are guarded by Cache.mu, except
// notify, which carries at most one pending "the snapshot changed".
type conn struct {
	identity string // immutable
	notify   chan struct{}
	status   ProxyStatus
	// nonce is the latest one sent, for version nonceVersion.
	nonce        string
	nonceVersion string
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
		select {
		case w.notify <- struct{}{}:
		default: // a notification is already pending: it covers this one
		}
	}
	return s.version
}

func newSnapshot(cfg *weftv1.ProxyConfig) *snapshot {
	if cfg == nil {
		cfg = &weftv1.ProxyConfig{}
	}
	cfg = proto.Clone(cfg).(*weftv1.ProxyConfig)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		// Still give distinct bad configs distinct versions, so a later good
		// one is never mistaken for an identical Set.
		sum := sha256.Sum256([]byte(cfg.String()))
		return &snapshot{
			version: "invalid-" + hex.EncodeToString(sum[:])[:16],
			cfg:     cfg,
			err:     fmt.Errorf("encoding the config: %w", err),
		}
	}
	sum := sha256.Sum256(b)
	return &snapshot{version: hex.EncodeToString(sum[:])[:16], cfg: cfg}
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
		identity: NodeKey(node),
		notify:   make(chan struct{}, 1),
		status:   ProxyStatus{Node: node, ConnectedSince: now},
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

// sending records that version goes out with nonce; answers to any earlier
// nonce are stale from now on.
func (c *Cache) sending(w *conn, version, nonce string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.nonce, w.nonceVersion = nonce, version
	w.status.SentVersion = version
	w.status.WithheldVersion, w.status.WithheldError = "", ""
}

func (c *Cache) withheld(w *conn, version string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.status.WithheldVersion, w.status.WithheldError = version, err.Error()
}

// answer records an ACK (detail empty) or NACK of nonce and returns the
// version it answers; ok is false for a stale or unknown nonce.
func (c *Cache) answer(w *conn, nonce, detail string, now time.Time) (version string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nonce == "" || nonce != w.nonce {
		return "", false
	}
	if detail != "" {
		w.status.LastError, w.status.RejectedVersion = detail, w.nonceVersion
		return w.nonceVersion, true
	}
	w.status.AckedVersion, w.status.LastAckAt = w.nonceVersion, now
	w.status.LastError, w.status.RejectedVersion = "", ""
	return w.nonceVersion, true
}
