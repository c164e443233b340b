// Package configversion computes the version of a ProxyConfig: the first 16
// hex digits of the SHA-256 of its deterministic protobuf encoding. The
// control plane's Discovery server versions every snapshot with it, and the
// proxy checks with it that a config it rebuilt from an incremental update
// is the one the control plane meant. It lives on the proxy's side of the
// tree so that weft-proxy can use it without linking control-plane code.
package configversion

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/proto"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// Len is the length of a version, in hex digits.
const Len = 16

// Of returns cfg's version. A nil cfg is the empty config. It fails only
// when cfg cannot be encoded (a string field that is not UTF-8).
func Of(cfg *weftv1.ProxyConfig) (string, error) {
	if cfg == nil {
		cfg = &weftv1.ProxyConfig{}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding the config: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:Len], nil
}
