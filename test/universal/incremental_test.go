package universal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weft-mesh/weft/internal/control/server"
)

// sentLog keeps the control plane's "config sent" debug records: what the
// Discovery server sent to which proxy, full or incremental.
type sentLog struct {
	mu   sync.Mutex
	sent []map[string]string
}

func (l *sentLog) records() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sent)
}

// sentHandler is a slog.Handler that records "config sent" into a sentLog.
type sentHandler struct {
	log   *sentLog
	attrs []slog.Attr
}

func (h *sentHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *sentHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "config sent" {
		return nil
	}
	rec := map[string]string{}
	for _, a := range h.attrs {
		rec[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec[a.Key] = a.Value.String()
		return true
	})
	h.log.mu.Lock()
	h.log.sent = append(h.log.sent, rec)
	h.log.mu.Unlock()
	return nil
}

func (h *sentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &sentHandler{log: h.log, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *sentHandler) WithGroup(string) slog.Handler { return h }

// unmeshed is a workload without a proxy, called in plaintext.
func unmeshed(name, app string, port int) string {
	return fmt.Sprintf(`---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: %s, namespace: default, labels: {app: %s}}
spec: {address: 127.0.0.1, meshed: false, ports: [{name: http, port: %d}]}
`, name, app, port)
}

// TestIncrementalDiscovery: a proxy calls three services; when the
// endpoint of one of them moves to another application, the control plane
// sends that proxy an incremental update carrying that service alone, and
// the proxy's traffic follows while the other services keep answering.
func TestIncrementalDiscovery(t *testing.T) {
	var hits [4]atomic.Int64
	appA, appB1, appB2, appC := app(t, "a-1", &hits[0]), app(t, "b-1", &hits[1]), app(t, "b-2", &hits[2]), app(t, "c-1", &hits[3])
	services := ""
	for _, n := range []string{"a", "b", "c"} {
		services += fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  selector: {app: %s}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
`, n, n)
	}
	services += `---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client-1, namespace: default, labels: {app: client}}
spec: {address: 127.0.0.1, serviceAccount: client, proxy: {inboundPort: ` + fmt.Sprint(freePort(t)) + `}}
`
	mesh := func(b string) string { return services + unmeshed("a-1", "a", appA) + b + unmeshed("c-1", "c", appC) }

	sent := &sentLog{}
	m := startIssuedMesh(t, mesh(unmeshed("b-1", "b", appB1)), func(o *server.Options) { o.Logger = slog.New(&sentHandler{log: sent}) })
	admin := m.proxy("client", "client-1", []string{"default/a", "default/b", "default/c"}, freePort(t))

	// The local address of each service, from the proxy's config.
	resp, err := http.Get("http://" + admin + "/config_dump")
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Config struct {
			Outbound struct {
				Explicit []struct{ Address, Service string } `json:"explicit"`
			} `json:"outbound"`
		} `json:"config"`
	}
	err = json.NewDecoder(resp.Body).Decode(&dump)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	local := map[string]string{}
	for _, e := range dump.Config.Outbound.Explicit {
		local[strings.SplitN(e.Service, ".", 2)[0]] = e.Address
	}
	if len(local) != 3 {
		t.Fatalf("explicit listeners %+v, want one for each of a, b and c", dump.Config.Outbound.Explicit)
	}
	get := func(svc string) string {
		resp, err := http.Get("http://" + local[svc] + "/x")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for svc, want := range map[string]string{"a": "a-1 saw", "b": "b-1 saw", "c": "c-1 saw"} {
		eventually(t, svc+" answers through the proxy", func() bool { return strings.HasPrefix(get(svc), want) })
	}
	before := len(sent.records())

	// b's endpoint moves to another application.
	writeFile(t, m.meshFile, mesh(unmeshed("b-2", "b", appB2)))
	eventually(t, "b's traffic reaches b-2", func() bool { return strings.HasPrefix(get("b"), "b-2 saw") })
	for svc, want := range map[string]string{"a": "a-1 saw", "c": "c-1 saw"} {
		if got := get(svc); !strings.HasPrefix(got, want) {
			t.Errorf("%s answered %q after b changed, want %s", svc, got, want)
		}
	}

	var incremental []map[string]string
	for _, r := range sent.records()[before:] {
		if r["node_id"] == "client-1" && r["update"] == "incremental" {
			incremental = append(incremental, r)
		}
	}
	t.Logf("sent after the change: %v", sent.records()[before:])
	if len(incremental) == 0 {
		t.Fatalf("no incremental update sent to client-1 after the change; sent: %v", sent.records()[before:])
	}
	for _, r := range incremental {
		if r["services"] != "3" || r["services_updated"] != "1" || r["services_removed"] != "0" {
			t.Errorf("incremental update %v: want 1 of 3 services updated, none removed", r)
		}
	}
}
