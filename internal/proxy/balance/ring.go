package balance

import (
	"cmp"
	"math"
	"slices"
)

// The ring uses a fixed hash (FNV-1a 64 with a murmur3 finalizer) rather than
// a per-process seed, so every proxy of the mesh maps a key to the same
// endpoint, which keeps caches behind the service warm however the clients
// are spread over proxies.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	golden    = 0x9e3779b97f4a7c15
)

func hashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return mix(h)
}

// mix is the murmur3 64-bit finalizer.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// buildRing places virtual nodes for each endpoint: replicasPerEndpoint for
// the heaviest, proportionally fewer (at least one) for the others, all
// scaled down if the total would exceed maxSize. Virtual node k of an
// endpoint is at a position derived from its address and k only, so an
// endpoint's nodes do not move when other endpoints come and go.
func buildRing(addrs []string, weights []uint32, maxSize int) (hashes []uint64, owners []int32) {
	var wmax uint32
	for _, w := range weights {
		wmax = max(wmax, w)
	}
	var rel float64
	for _, w := range weights {
		rel += float64(w) / float64(wmax)
	}
	replicas := min(float64(replicasPerEndpoint), float64(maxSize)/rel)

	type vnode struct {
		hash  uint64
		owner int32
	}
	var nodes []vnode
	for i, a := range addrs {
		n := max(1, int(math.Round(replicas*float64(weights[i])/float64(wmax))))
		base := hashString(a)
		for k := range n {
			nodes = append(nodes, vnode{mix(base + uint64(k+1)*golden), int32(i)})
		}
	}
	// Owners are in Addr order, so ties (vanishingly rare) are broken by
	// Addr and do not depend on the order endpoints were given in.
	slices.SortFunc(nodes, func(a, b vnode) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.owner, b.owner))
	})
	hashes = make([]uint64, len(nodes))
	owners = make([]int32, len(nodes))
	for i, v := range nodes {
		hashes[i], owners[i] = v.hash, v.owner
	}
	return hashes, owners
}

// lookup returns the member owning key: the first virtual node at or after
// the key's hash, wrapping around.
func (s *snapshot) lookup(key string) int {
	i, _ := slices.BinarySearch(s.ringHashes, hashString(key))
	if i == len(s.ringHashes) {
		i = 0
	}
	return int(s.ringOwners[i])
}
