// Package jointoken keeps the join tokens of universal mode: the proof of
// identity a proxy on a VM or a laptop presents the first time it asks the
// control plane for a certificate.
//
// A token is bound to one SPIFFE ID when it is created (`weft token
// create`), expires, and is single-use unless created reusable. It reads
// "weft-join.<id>.<secret>": id names the record, secret is 32 random bytes.
// Only the SHA-256 of the secret is stored, in <data-dir>/join-tokens.json
// (0600, written atomically). Every change happens under an advisory lock on
// <data-dir>/join-tokens.lock, so the CLI and a running control plane can
// share the directory; the control plane re-reads the file on every
// redemption, so a token created by the CLI works at once.
package jointoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/atomicfile"
)

// Files of the store in the data directory.
const (
	FileName = "join-tokens.json"
	lockName = "join-tokens.lock"
	prefix   = "weft-join."
)

// MaxTTL bounds a token's lifetime: a join token is a bootstrap secret, not
// a credential to keep.
const MaxTTL = 30 * 24 * time.Hour

const keepExpired = 24 * time.Hour

// Token is what the store knows of one token: never the secret.
type Token struct {
	ID        string     `json:"id"`
	Hash      string     `json:"sha256"`
	Identity  string     `json:"identity"`
	Created   time.Time  `json:"created"`
	Expires   time.Time  `json:"expires"`
	SingleUse bool       `json:"single_use"`
	Used      *time.Time `json:"used,omitempty"`
}

type file struct {
	Tokens []Token `json:"tokens"`
}

// Store is the token file of one data directory.
type Store struct {
	dir string
	now func() time.Time
}

// Open returns the store of dir (created 0700 if needed). now may be nil
// (time.Now).
func Open(dir string, now func() time.Time) (*Store, error) {
	if err := atomicfile.EnsureDir(dir); err != nil {
		return nil, fmt.Errorf("join tokens: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Store{dir: dir, now: now}, nil
}

// CreateOptions describe a new token.
type CreateOptions struct {
	// Identity the token proves. Required.
	Identity spiffeid.ID
	// TTL is how long the token can be redeemed. Required, at most MaxTTL.
	TTL time.Duration
	// Reusable tokens can be redeemed any number of times until they expire
	// (for autoscaled VMs from one image); others only once.
	Reusable bool
}

// Create makes a token and returns it, the only time its secret is seen.
func (s *Store) Create(o CreateOptions) (string, Token, error) {
	switch {
	case o.Identity.IsZero():
		return "", Token{}, errors.New("join token: no identity given; a token is bound to one SPIFFE ID, e.g. spiffe://weft.local/ns/default/sa/web")
	case o.Identity.Path() == "":
		return "", Token{}, fmt.Errorf("join token: %s names a trust domain, not a workload; give spiffe://%s/ns/<namespace>/sa/<service-account>", o.Identity, o.Identity.TrustDomain().Name())
	case o.TTL <= 0 || o.TTL > MaxTTL:
		return "", Token{}, fmt.Errorf("join token: lifetime %v is out of range; give a duration from 1s to %v", o.TTL, MaxTTL)
	}
	var raw [6 + 32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, fmt.Errorf("join token: reading random bytes: %w", err)
	}
	id := hex.EncodeToString(raw[:6])
	secret := base64.RawURLEncoding.EncodeToString(raw[6:])
	now := s.now().UTC()
	t := Token{
		ID:        id,
		Hash:      hashOf(secret),
		Identity:  o.Identity.String(),
		Created:   now,
		Expires:   now.Add(o.TTL),
		SingleUse: !o.Reusable,
	}
	err := s.update(func(f *file) error {
		f.Tokens = append(f.Tokens, t)
		return nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return prefix + id + "." + secret, t, nil
}

// RedeemError is why a token was refused. Its message is meant for the
// operator of the proxy that presented it.
type RedeemError struct{ Reason string }

func (e *RedeemError) Error() string { return "join token refused: " + e.Reason }

// Redeem checks a presented token and returns the identity it is bound to;
// a single-use token is marked used in the same locked update. Every
// refusal is a *RedeemError.
func (s *Store) Redeem(token string) (spiffeid.ID, error) {
	id, secret, ok := parse(token)
	if !ok {
		return spiffeid.ID{}, &RedeemError{Reason: "it is not a weft join token (weft-join.<id>.<secret>); copy it whole from `weft token create`"}
	}
	var out spiffeid.ID
	err := s.update(func(f *file) error {
		i := slices.IndexFunc(f.Tokens, func(t Token) bool { return t.ID == id })
		if i < 0 {
			return &RedeemError{Reason: fmt.Sprintf("token %s is unknown to this control plane (never created here, or revoked); create one with `weft token create`", id)}
		}
		t := &f.Tokens[i]
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hashOf(secret))) != 1 {
			return &RedeemError{Reason: fmt.Sprintf("token %s: the secret does not match; copy the token whole from `weft token create`", id)}
		}
		now := s.now()
		if !now.Before(t.Expires) {
			return &RedeemError{Reason: fmt.Sprintf("token %s for %s expired at %s; create a new one", id, t.Identity, t.Expires.Format(time.RFC3339))}
		}
		if t.SingleUse && t.Used != nil {
			return &RedeemError{Reason: fmt.Sprintf("token %s for %s was already used at %s and is single-use; a replayed token is refused: create a new one (or a --reusable one)", id, t.Identity, t.Used.Format(time.RFC3339))}
		}
		pid, err := spiffeid.FromString(t.Identity)
		if err != nil {
			return fmt.Errorf("join token %s: stored identity %q: %w; the token file is corrupted", id, t.Identity, err)
		}
		u := now.UTC()
		t.Used = &u
		out = pid
		return nil
	})
	if err != nil {
		return spiffeid.ID{}, err
	}
	return out, nil
}

// List returns the tokens of the store, including spent and expired ones
// kept for a day.
func (s *Store) List() ([]Token, error) {
	var out []Token
	err := s.update(func(f *file) error {
		out = slices.Clone(f.Tokens)
		return nil
	})
	return out, err
}

// Revoke deletes the token with this id (the part after "weft-join.").
func (s *Store) Revoke(id string) error {
	return s.update(func(f *file) error {
		n := len(f.Tokens)
		f.Tokens = slices.DeleteFunc(f.Tokens, func(t Token) bool { return t.ID == id })
		if len(f.Tokens) == n {
			return fmt.Errorf("join token %s: no such token; `weft token list` shows them", id)
		}
		return nil
	})
}

// update runs fn on the file under the lock and writes the result, without
// the tokens that can no longer be redeemed.
func (s *Store) update(fn func(*file) error) error {
	unlock, err := atomicfile.Lock(filepath.Join(s.dir, lockName))
	if err != nil {
		return fmt.Errorf("join tokens: %w", err)
	}
	defer unlock()
	path := filepath.Join(s.dir, FileName)
	var f file
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("join tokens: reading %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("join tokens: %s is corrupted: %w; remove it (every token is then revoked)", path, err)
		}
	}
	before := len(f.Tokens)
	fnErr := fn(&f)
	var redeem *RedeemError
	if fnErr != nil && !errors.As(fnErr, &redeem) {
		return fnErr
	}
	// Expired tokens are kept a day, so that a late proxy is told its token
	// expired rather than that it is unknown.
	now := s.now()
	f.Tokens = slices.DeleteFunc(f.Tokens, func(t Token) bool { return !now.Before(t.Expires.Add(keepExpired)) })
	if fnErr != nil && len(f.Tokens) == before {
		return fnErr // nothing to write
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("join tokens: encoding: %w", err)
	}
	if err := atomicfile.Write(path, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("join tokens: %w", err)
	}
	return fnErr
}

func parse(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), prefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, ".")
	if !ok || len(id) != 12 || secret == "" {
		return "", "", false
	}
	return id, secret, true
}

func hashOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
