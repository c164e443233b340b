package tlsid_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/tlsid"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

// leafOf parses the first certificate of f's cert file.
func leafOf(t *testing.T, f tlsid.Files) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(readFile(t, f.CertFile))
	if block == nil {
		t.Fatalf("%s: no PEM", f.CertFile)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// atomicWrite replaces path the way most tools do: write a temporary file
// in the same directory and rename it over the target.
func atomicWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, b)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// copyInto copies f's three files into dir and returns the new Files.
func copyInto(t *testing.T, f tlsid.Files, dir string) tlsid.Files {
	t.Helper()
	out := tlsid.Files{
		CertFile:        filepath.Join(dir, "cert.pem"),
		KeyFile:         filepath.Join(dir, "key.pem"),
		TrustBundleFile: filepath.Join(dir, "bundle.pem"),
	}
	writeFile(t, out.CertFile, readFile(t, f.CertFile))
	writeFile(t, out.KeyFile, readFile(t, f.KeyFile))
	writeFile(t, out.TrustBundleFile, readFile(t, f.TrustBundleFile))
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type watcher struct {
	changes chan error
	logs    *syncBuffer
}

// startWatch runs s.WatchEvery until the test ends.
func startWatch(t *testing.T, s *tlsid.Source, poll time.Duration) *watcher {
	t.Helper()
	w := &watcher{changes: make(chan error, 64), logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(w.logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.WatchEvery(ctx, logger, func(err error) { w.changes <- err }, poll)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v", err)
		}
	})
	return w
}

// nextChange waits for the next onChange call.
func (w *watcher) nextChange(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.changes:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a reload")
		return nil
	}
}

func TestReload(t *testing.T) {
	ca := tlstest.NewCA(t, "example.org")
	f := copyInto(t, ca.Issue(t, serverURI, time.Hour), t.TempDir())
	s := mustLoad(t, f)

	if err := s.Reload(); err != nil {
		t.Fatalf("Reload of unchanged files: %v", err)
	}

	next := ca.Issue(t, serverURI, 2*time.Hour)
	atomicWrite(t, f.CertFile, readFile(t, next.CertFile))
	// Cert replaced, key not yet: a half-done update must be refused.
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Reload with mismatched key = %v; want a key mismatch error", err)
	}
	if d := time.Until(s.NotAfter()); d > time.Hour {
		t.Fatalf("material replaced despite the error (NotAfter in %v)", d)
	}
	atomicWrite(t, f.KeyFile, readFile(t, next.KeyFile))
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !s.Certificate().Leaf.Equal(leafOf(t, next)) {
		t.Error("Reload did not pick up the new certificate")
	}
}

// testWatchSwap starts a server on a Source watching f, keeps a connection
// open, lets swap replace the files with next, and checks the Source, new
// and old connections, then checks that a broken replacement is refused.
func testWatchSwap(t *testing.T, f tlsid.Files, next tlsid.Files, swap func(tlsid.Files), breakIt func()) {
	server := mustLoad(t, f)
	client := mustLoad(t, next) // same CA as the server, separate files
	srv := startServer(t, server.ServerConfig(tlsid.ALPNHTTP2))
	oldLeaf := server.Certificate().Leaf

	open := mustDial(t, srv.addr, client.ClientConfig(server.ID(), tlsid.ALPNHTTP2))
	if err := roundTrip(open, "before"); err != nil {
		t.Fatal(err)
	}
	if !open.ConnectionState().PeerCertificates[0].Equal(oldLeaf) {
		t.Fatal("server did not present the initial certificate")
	}

	w := startWatch(t, server, tlsid.DefaultPollInterval) // events only: the poll won't fire in time
	swap(next)

	newLeaf := leafOf(t, next)
	eventually(t, "the watcher to load the new certificate", func() bool {
		return server.Certificate().Leaf.Equal(newLeaf)
	})
	// Drain change notifications; intermediate states of a non-atomic
	// update may have been reported as errors, the last must be success.
	eventually(t, "a successful change notification", func() bool {
		for {
			select {
			case err := <-w.changes:
				if err == nil {
					return true
				}
			default:
				return false
			}
		}
	})
	logs := w.logs.String()
	for _, s := range []string{"reloaded certificates", "id=" + serverURI, "not_after="} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs %q do not contain %q", logs, s)
		}
	}

	c := mustDial(t, srv.addr, client.ClientConfig(server.ID(), tlsid.ALPNHTTP2))
	if !c.ConnectionState().PeerCertificates[0].Equal(newLeaf) {
		t.Error("new handshake did not present the new certificate")
	}
	if err := roundTrip(c, "after"); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(open, "still open"); err != nil {
		t.Fatalf("connection opened before the reload broke: %v", err)
	}

	// A broken replacement is reported and the working material kept.
	breakIt()
	if err := w.nextChange(t); err == nil {
		t.Fatal("broken replacement reported as success")
	}
	if !server.Certificate().Leaf.Equal(newLeaf) {
		t.Fatal("broken replacement replaced the material")
	}
	if err := server.Reload(); err == nil {
		t.Error("Reload of broken files succeeded")
	}
	if !strings.Contains(w.logs.String(), "keeping the previous ones") {
		t.Errorf("failure not logged: %s", w.logs.String())
	}
	c2 := mustDial(t, srv.addr, client.ClientConfig(server.ID(), tlsid.ALPNHTTP2))
	if err := roundTrip(c2, "after break"); err != nil {
		t.Fatal(err)
	}
}

func TestWatchRenameSwap(t *testing.T) {
	ca := tlstest.NewCA(t, "example.org")
	f := copyInto(t, ca.Issue(t, serverURI, time.Hour), t.TempDir())
	next := ca.Issue(t, serverURI, 2*time.Hour)

	testWatchSwap(t, f, next,
		func(next tlsid.Files) {
			atomicWrite(t, f.KeyFile, readFile(t, next.KeyFile))
			atomicWrite(t, f.CertFile, readFile(t, next.CertFile))
		},
		func() {
			atomicWrite(t, f.CertFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"))
		},
	)
}

// TestWatchKubernetesSymlinkSwap mimics a Kubernetes Secret volume:
//
//	dir/tls.crt -> ..data/tls.crt
//	dir/..data  -> ..2024_01_01_v1
//
// updated by writing a new timestamped directory and renaming a new
// "..data" symlink over the old one.
func TestWatchKubernetesSymlinkSwap(t *testing.T) {
	ca := tlstest.NewCA(t, "example.org")
	dir := t.TempDir()
	version := 0
	publish := func(src tlsid.Files, certPEM []byte) {
		version++
		ts := filepath.Join(dir, "..2024_01_01_v"+string(rune('0'+version)))
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(ts, "tls.crt"), certPEM)
		writeFile(t, filepath.Join(ts, "tls.key"), readFile(t, src.KeyFile))
		writeFile(t, filepath.Join(ts, "ca.crt"), readFile(t, src.TrustBundleFile))
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if old != "" {
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := ca.Issue(t, serverURI, time.Hour)
	publish(first, readFile(t, first.CertFile))
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	f := tlsid.Files{
		CertFile:        filepath.Join(dir, "tls.crt"),
		KeyFile:         filepath.Join(dir, "tls.key"),
		TrustBundleFile: filepath.Join(dir, "ca.crt"),
	}
	next := ca.Issue(t, serverURI, 2*time.Hour)

	testWatchSwap(t, f, next,
		func(next tlsid.Files) { publish(next, readFile(t, next.CertFile)) },
		// Key of "next" with a certificate of another key pair.
		func() { publish(next, readFile(t, ca.Issue(t, serverURI, time.Hour).CertFile)) },
	)
}

// TestWatchPollFallback changes files in a directory that is not watched
// (cert and key are symlinks into it, as when an operator links to files
// managed elsewhere); only the poll can see that.
func TestWatchPollFallback(t *testing.T) {
	ca := tlstest.NewCA(t, "example.org")
	first := ca.Issue(t, serverURI, time.Hour)
	f := copyInto(t, first, t.TempDir())
	elsewhere := t.TempDir()
	realCert, realKey := filepath.Join(elsewhere, "cert.pem"), filepath.Join(elsewhere, "key.pem")
	writeFile(t, realCert, readFile(t, first.CertFile))
	writeFile(t, realKey, readFile(t, first.KeyFile))
	for link, target := range map[string]string{f.CertFile: realCert, f.KeyFile: realKey} {
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	s := mustLoad(t, f)
	w := startWatch(t, s, 50*time.Millisecond)

	next := ca.Issue(t, serverURI, 2*time.Hour)
	atomicWrite(t, realKey, readFile(t, next.KeyFile))
	atomicWrite(t, realCert, readFile(t, next.CertFile))
	newLeaf := leafOf(t, next)
	eventually(t, "the poll to load the new certificate", func() bool {
		return s.Certificate().Leaf.Equal(newLeaf)
	})
	eventually(t, "a successful change notification", func() bool {
		select {
		case err := <-w.changes:
			return err == nil
		default:
			return false
		}
	})
}
