package discovery

import (
	"cmp"
	"crypto/sha256"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// serviceIndex is what incremental responses need to know of a snapshot,
// built once per snapshot (snapshot.index) and immutable afterwards.
type serviceIndex struct {
	// byName has the digest of every service, by name.
	byName map[string]serviceDigest
	// unique: no two services share a name. sorted: the names are strictly
	// increasing, the order in which a proxy rebuilds a config from an
	// incremental response (so only such a snapshot is sent as one).
	unique, sorted bool
	// rest is the config without its services, sharing the snapshot's
	// messages: the config field of an incremental response.
	rest *weftv1.ProxyConfig
	// ok is false when a service cannot be encoded: no incremental
	// response then.
	ok bool
}

// serviceDigest is the SHA-256 of one service's deterministic encoding, and
// that encoding's size.
type serviceDigest struct {
	sum  [sha256.Size]byte
	size int
}

// index returns s's service index, building it on first use.
func (s *snapshot) index() *serviceIndex {
	s.indexOnce.Do(func() { s.idx = newServiceIndex(s.cfg) })
	return s.idx
}

func newServiceIndex(cfg *weftv1.ProxyConfig) *serviceIndex {
	idx := &serviceIndex{
		byName: make(map[string]serviceDigest, len(cfg.GetServices())),
		unique: true,
		sorted: true,
		rest:   withoutServices(cfg),
		ok:     true,
	}
	enc := proto.MarshalOptions{Deterministic: true}
	var buf []byte
	for i, svc := range cfg.GetServices() {
		var err error
		buf, err = enc.MarshalAppend(buf[:0], svc)
		if err != nil {
			idx.ok = false
			return idx
		}
		name := svc.GetName()
		if _, dup := idx.byName[name]; dup {
			idx.unique = false
		}
		if i > 0 && cmp.Compare(cfg.GetServices()[i-1].GetName(), name) >= 0 {
			idx.sorted = false
		}
		idx.byName[name] = serviceDigest{sum: sha256.Sum256(buf), size: len(buf)}
	}
	return idx
}

// withoutServices returns a ProxyConfig with every field of cfg, unknown
// fields included, except services. Its fields share cfg's messages: it
// must not be modified.
func withoutServices(cfg *weftv1.ProxyConfig) *weftv1.ProxyConfig {
	out := &weftv1.ProxyConfig{}
	src, dst := cfg.ProtoReflect(), out.ProtoReflect()
	services := src.Descriptor().Fields().ByName("services")
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != services {
			dst.Set(fd, v)
		}
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	return out
}

// delta is an incremental update from one snapshot to the next.
type delta struct {
	updated []*weftv1.Service
	removed []string
	// size is the encoded size of updated and removed (with base_version),
	// full that of every service of the next snapshot.
	size, full int
}

// diff computes the update that turns base's config into next's. ok is
// false when an incremental response cannot carry it (next's services are
// not unique and sorted by name, base's names are not unique, a service
// cannot be encoded) or would not be smaller than next's services.
func diff(base, next *snapshot) (d delta, ok bool) {
	bi, ni := base.index(), next.index()
	if !bi.ok || !ni.ok || !bi.unique || !ni.sorted {
		return delta{}, false
	}
	d.size = protowire.SizeTag(6) + protowire.SizeBytes(len(base.version))
	for _, svc := range next.cfg.GetServices() {
		dg := ni.byName[svc.GetName()]
		d.full += protowire.SizeTag(6) + protowire.SizeBytes(dg.size)
		if old, found := bi.byName[svc.GetName()]; !found || old.sum != dg.sum {
			d.updated = append(d.updated, svc)
			d.size += protowire.SizeTag(7) + protowire.SizeBytes(dg.size)
		}
	}
	for _, svc := range base.cfg.GetServices() {
		if _, found := ni.byName[svc.GetName()]; !found {
			d.removed = append(d.removed, svc.GetName())
			d.size += protowire.SizeTag(8) + protowire.SizeBytes(len(svc.GetName()))
		}
	}
	return d, d.size < d.full
}

// response builds the response that brings a proxy from base (nil: none
// known) to snap, incremental when that is possible and smaller.
func response(base, snap *snapshot) (resp *discoveryv1.DiscoveryResponse, d delta, incremental bool) {
	if base != nil {
		if d, ok := diff(base, snap); ok {
			return &discoveryv1.DiscoveryResponse{
				Version:         snap.version,
				Config:          snap.index().rest,
				BaseVersion:     base.version,
				ServicesUpdated: d.updated,
				ServicesRemoved: d.removed,
			}, d, true
		}
	}
	return &discoveryv1.DiscoveryResponse{Version: snap.version, Config: snap.cfg}, delta{}, false
}
