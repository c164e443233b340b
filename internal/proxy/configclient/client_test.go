package configclient_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
)

func TestNewChecksOptions(t *testing.T) {
	ok := configclient.Options{
		Address: "127.0.0.1:1",
		Dial:    []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Node:    &discoveryv1.Node{Identity: idWeb},
		Apply:   (&recorder{}).apply,
	}
	cases := []struct {
		name   string
		modify func(*configclient.Options)
		want   string // "" for no error
	}{
		{"valid", func(*configclient.Options) {}, ""},
		{"no address", func(o *configclient.Options) { o.Address = "" }, "Address"},
		{"no node", func(o *configclient.Options) { o.Node = nil }, "Node.Identity"},
		{"no identity", func(o *configclient.Options) { o.Node = &discoveryv1.Node{Id: "pod"} }, "Node.Identity"},
		{"no apply", func(o *configclient.Options) { o.Apply = nil }, "Apply"},
		{"no transport credentials", func(o *configclient.Options) { o.Dial = nil }, "dial options"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.modify(&o)
			_, err := configclient.New(o)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestEndToEnd: a Set reaches the proxy, is applied and acknowledged; an
// identical Set pushes nothing.
func TestEndToEnd(t *testing.T) {
	cp := startControlPlane(t, "", discovery.NewCache(), discovery.Options{})
	r := &recorder{}
	node := &discoveryv1.Node{Identity: idWeb, Id: "web-1"}
	c := startClient(t, cp.addr, node, r, nil)

	for _, v := range []string{"v1", "v2"} {
		ver := cp.cache.Set(discovery.NodeKey(node), cfg(v))
		waitFor(t, v+" acknowledged", func() bool { return cp.acked(idWeb, ver, 1) })
		if got := r.last(); got != v {
			t.Fatalf("last applied %q, want %q", got, v)
		}
		if st := c.State(); !st.Connected || st.LastVersion != ver || st.LastError != "" || st.LastChange.IsZero() {
			t.Errorf("client state %+v, want connected at version %s", st, ver)
		}
	}
	st := cp.status(idWeb)[0]
	if st.Node.GetId() != "web-1" || st.ConnectedSince.IsZero() || st.LastAckAt.IsZero() {
		t.Errorf("status %+v", st)
	}

	calls, _ := r.snapshot()
	ver := cp.cache.Set(discovery.NodeKey(node), cfg("v2"))
	time.Sleep(100 * time.Millisecond) // 10 debounce periods
	if now, _ := r.snapshot(); len(now) != len(calls) || cp.status(idWeb)[0].SentVersion != ver {
		t.Errorf("an identical Set pushed something: Apply calls %v, then %v", calls, now)
	}
}

// TestNack: a rejected config is reported to the control plane and the
// proxy keeps its previous one; the next good config is applied.
func TestNack(t *testing.T) {
	cp := startControlPlane(t, "", discovery.NewCache(), discovery.Options{})
	r := &recorder{}
	c := startClient(t, cp.addr, &discoveryv1.Node{Identity: idWeb}, r, nil)

	v1 := cp.cache.Set(idWeb, cfg("v1"))
	waitFor(t, "v1 acknowledged", func() bool { return cp.acked(idWeb, v1, 1) })

	vBad := cp.cache.Set(idWeb, cfg("bad"))
	waitFor(t, "the NACK", func() bool { return cp.status(idWeb)[0].LastError != "" })
	st := cp.status(idWeb)[0]
	if !strings.Contains(st.LastError, `version: "bad" is refused`) || st.RejectedVersion != vBad || st.AckedVersion != v1 {
		t.Errorf("status after NACK %+v", st)
	}
	if got := r.last(); got != "v1" {
		t.Errorf("last applied %q, want v1 kept", got)
	}
	if cs := c.State(); cs.LastVersion != v1 || !strings.Contains(cs.LastError, "refused") {
		t.Errorf("client state %+v, want v1 running and the rejection", cs)
	}

	v3 := cp.cache.Set(idWeb, cfg("v3"))
	waitFor(t, "v3 acknowledged", func() bool { return cp.acked(idWeb, v3, 1) })
	if st := cp.status(idWeb)[0]; st.LastError != "" {
		t.Errorf("rejection not cleared by a later ACK: %+v", st)
	}
	if _, applied := r.snapshot(); !slices.Equal(applied, []string{"v1", "v3"}) {
		t.Errorf("applied %v, want [v1 v3]", applied)
	}
}

// TestValidateWithholds: a snapshot failing the server's Validate never
// reaches the proxy.
func TestValidateWithholds(t *testing.T) {
	cp := startControlPlane(t, "", discovery.NewCache(), discovery.Options{
		Validate: func(c *weftv1.ProxyConfig) error { _, err := config.Compile(c); return err },
	})
	r := &recorder{}
	startClient(t, cp.addr, &discoveryv1.Node{Identity: idWeb}, r, nil)

	v1 := cp.cache.Set(idWeb, cfg("v1"))
	waitFor(t, "v1 acknowledged", func() bool { return cp.acked(idWeb, v1, 1) })
	invalid := cfg("invalid")
	invalid.Outbound = nil // no listener at all
	vInvalid := cp.cache.Set(idWeb, invalid)
	waitFor(t, "the snapshot withheld", func() bool { return cp.status(idWeb)[0].WithheldVersion == vInvalid })
	if st := cp.status(idWeb)[0]; !strings.Contains(st.WithheldError, "no listener") {
		t.Errorf("WithheldError %q, want the Compile error", st.WithheldError)
	}
	v2 := cp.cache.Set(idWeb, cfg("v2"))
	waitFor(t, "v2 acknowledged", func() bool { return cp.acked(idWeb, v2, 1) })
	if calls, _ := r.snapshot(); !slices.Equal(calls, []string{"v1", "v2"}) {
		t.Errorf("Apply called with %v, want [v1 v2]: the invalid snapshot must not be sent", calls)
	}
}

// TestControlPlaneRestart: while the control plane is down the proxy keeps
// its config; it reconnects to the new one and gets the rebuilt snapshot,
// applying it only when it differs.
func TestControlPlaneRestart(t *testing.T) {
	cases := []struct {
		name        string
		rebuilt     string // config version the new control plane serves
		wantApplied []string
	}{
		{"rebuilt identical", "v1", []string{"v1"}},
		{"rebuilt changed", "v2", []string{"v1", "v2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp := startControlPlane(t, "", discovery.NewCache(), discovery.Options{})
			r := &recorder{}
			c := startClient(t, cp.addr, &discoveryv1.Node{Identity: idWeb}, r, nil)
			v1 := cp.cache.Set(idWeb, cfg("v1"))
			waitFor(t, "v1 acknowledged", func() bool { return cp.acked(idWeb, v1, 1) })

			cp.stop(t)
			waitFor(t, "the client to notice", func() bool { return !c.State().Connected })
			time.Sleep(300 * time.Millisecond) // several failed reconnects (back-off max 100ms)
			if calls, _ := r.snapshot(); len(calls) != 1 {
				t.Errorf("Apply called while the control plane was down: %v", calls)
			}
			if st := c.State(); st.LastVersion != v1 || st.LastError == "" {
				t.Errorf("state while down %+v, want v1 running and the stream error", st)
			}

			cp2 := startControlPlane(t, cp.addr, discovery.NewCache(), discovery.Options{})
			ver := cp2.cache.Set(idWeb, cfg(tc.rebuilt))
			waitFor(t, "the rebuilt snapshot acknowledged", func() bool { return cp2.acked(idWeb, ver, 1) })
			if _, applied := r.snapshot(); !slices.Equal(applied, tc.wantApplied) {
				t.Errorf("applied %v, want %v", applied, tc.wantApplied)
			}
			if st := c.State(); !st.Connected || st.LastVersion != ver || st.LastError != "" {
				t.Errorf("state after reconnect %+v", st)
			}
		})
	}
}

// TestDebounce: a burst of Sets reaches the proxy as a few pushes, ending on
// the last.
func TestDebounce(t *testing.T) {
	cp := startControlPlane(t, "", discovery.NewCache(), discovery.Options{Debounce: 50 * time.Millisecond})
	r := &recorder{}
	startClient(t, cp.addr, &discoveryv1.Node{Identity: idWeb}, r, nil)
	v0 := cp.cache.Set(idWeb, cfg("v0"))
	waitFor(t, "v0 acknowledged", func() bool { return cp.acked(idWeb, v0, 1) })

	const burst = 50
	var last string
	for i := range burst {
		last = cp.cache.Set(idWeb, cfg(fmt.Sprintf("burst-%d", i)))
		time.Sleep(time.Millisecond) // room for a push between Sets, were there no debounce
	}
	waitFor(t, "the last of the burst acknowledged", func() bool { return cp.acked(idWeb, last, 1) })
	_, applied := r.snapshot()
	if pushes := len(applied) - 1; pushes > 10 {
		t.Errorf("%d Sets became %d pushes: %v", burst, pushes, applied)
	}
	if got, want := r.last(), fmt.Sprintf("burst-%d", burst-1); got != want {
		t.Errorf("last applied %q, want %q", got, want)
	}
}

// TestIdentities: every instance of an identity gets its snapshot; another
// identity gets its own.
func TestIdentities(t *testing.T) {
	cp := startControlPlane(t, "", discovery.NewCache(), discovery.Options{})
	web1, web2, api := &recorder{}, &recorder{}, &recorder{}
	startClient(t, cp.addr, &discoveryv1.Node{Identity: idWeb, Id: "web-1"}, web1, nil)
	startClient(t, cp.addr, &discoveryv1.Node{Identity: idWeb, Id: "web-2"}, web2, nil)
	startClient(t, cp.addr, &discoveryv1.Node{Identity: idAPI, Id: "api-1"}, api, nil)

	// One config per instance (discovery.NodeKey): here the same for both
	// web proxies.
	vWeb := cp.cache.Set(discovery.NodeKey(&discoveryv1.Node{Identity: idWeb, Id: "web-1"}), cfg("web"))
	cp.cache.Set(discovery.NodeKey(&discoveryv1.Node{Identity: idWeb, Id: "web-2"}), cfg("web"))
	vAPI := cp.cache.Set(discovery.NodeKey(&discoveryv1.Node{Identity: idAPI, Id: "api-1"}), cfg("api"))
	waitFor(t, "both web proxies acknowledged", func() bool { return cp.acked(idWeb, vWeb, 2) })
	waitFor(t, "the api proxy acknowledged", func() bool { return cp.acked(idAPI, vAPI, 1) })
	for name, tc := range map[string]struct {
		r    *recorder
		want string
	}{"web-1": {web1, "web"}, "web-2": {web2, "web"}, "api-1": {api, "api"}} {
		if _, applied := tc.r.snapshot(); !slices.Equal(applied, []string{tc.want}) {
			t.Errorf("%s applied %v, want [%s]", name, applied, tc.want)
		}
	}
	var ids []string
	for _, st := range cp.cache.Status() {
		ids = append(ids, st.Node.GetId())
	}
	if want := []string{"api-1", "web-1", "web-2"}; !slices.Equal(ids, want) {
		t.Errorf("Status lists %v, want %v", ids, want)
	}
}

// TestWatch: watched services reach the control plane on the open stream and
// again, all of them, after a reconnect.
func TestWatch(t *testing.T) {
	type watch struct {
		node     string
		services []string
	}
	var mu sync.Mutex
	var got []watch
	onWatch := func(n *discoveryv1.Node, s []string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, watch{n.GetId(), slices.Clone(s)})
	}
	seen := func(want ...watch) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.EqualFunc(got, want, func(a, b watch) bool { return a.node == b.node && slices.Equal(a.services, b.services) })
		}
	}
	cp := startControlPlane(t, "", discovery.NewCache(), discovery.Options{OnWatch: onWatch})
	r := &recorder{}
	c := startClient(t, cp.addr, &discoveryv1.Node{Identity: idWeb, Id: "web-1", WatchedServices: []string{"orders"}}, r, nil)

	first := watch{"web-1", []string{"orders"}}
	waitFor(t, "the initial watch", seen(first))
	c.Watch("payments", "orders")
	second := watch{"web-1", []string{"payments"}}
	waitFor(t, "the new watch", seen(first, second))

	cp.stop(t)
	waitFor(t, "the client to notice", func() bool { return !c.State().Connected })
	startControlPlane(t, cp.addr, discovery.NewCache(), discovery.Options{OnWatch: onWatch})
	waitFor(t, "every watch re-sent", seen(first, second, watch{"web-1", []string{"orders", "payments"}}))
}
