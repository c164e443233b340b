package renew

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
)

func crand() io.Reader { return rand.Reader }

func fingerprintOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func newRand() *mrand.Rand { return mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64())) }
