package up

import (
	"fmt"
	"io"
	"path/filepath"
)

// plan is the demo's layout on this machine.
type plan struct {
	cp                   int
	app, in, admin       map[string]int
	entryBase, frontBase int
}

// mesh is the demo's resources: three Services and their Workloads.
func (p plan) mesh() string {
	return fmt.Sprintf(`# The demo mesh of weft up. Edit and save: the control plane applies changes live.
apiVersion: v1
kind: Service
metadata: {name: frontend, namespace: demo}
spec:
  selector: {app: frontend}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: demo}
spec:
  selector: {app: catalog}
  ports: [{name: grpc, port: 9090, targetPort: grpc, appProtocol: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: inventory, namespace: demo}
spec:
  selector: {app: inventory}
  ports: [{name: tcp, port: 7000, targetPort: tcp, appProtocol: tcp}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: frontend-1, namespace: demo, labels: {app: frontend}}
spec:
  address: 127.0.0.1
  serviceAccount: frontend
  ports: [{name: http, port: %d, protocol: http1}]
  proxy: {inboundPort: %d}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog-1, namespace: demo, labels: {app: catalog}}
spec:
  address: 127.0.0.1
  serviceAccount: catalog
  ports: [{name: grpc, port: %d, protocol: grpc}]
  proxy: {inboundPort: %d}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: inventory-1, namespace: demo, labels: {app: inventory}}
spec:
  address: 127.0.0.1
  serviceAccount: inventory
  ports: [{name: tcp, port: %d, protocol: opaque}]
  proxy: {inboundPort: %d}
`, p.app["frontend"], p.in["frontend"], p.app["catalog"], p.in["catalog"], p.app["inventory"], p.in["inventory"])
}

// hints prints what to try next.
func (p plan) hints(w io.Writer, front, dir string) {
	fmt.Fprintf(w, `
weft is up: the control plane, three demo services (frontend over HTTP/1.1, catalog over gRPC, inventory over
TCP), each with its own weft-proxy, mTLS between all of them, and a trickle of demo traffic.

  curl %s                                   # the demo's front end, through the mesh
  watch -n1 'curl -s http://127.0.0.1:%d/metrics | grep ^weft_requests_total'   # live requests per service
  curl http://127.0.0.1:%d/config_dump                        # what the frontend's proxy runs

Metrics endpoints (Prometheus): entry 127.0.0.1:%d, frontend 127.0.0.1:%d, catalog 127.0.0.1:%d, inventory 127.0.0.1:%d
The mesh is the file %s: add an HTTPRoute there to split or shift traffic (docs/universal-mode.md).
Logs are in %s. Press Ctrl-C to stop everything.
`, front, p.admin["frontend"], p.admin["frontend"], p.admin["entry"], p.admin["frontend"], p.admin["catalog"], p.admin["inventory"],
		filepath.Join(dir, "mesh", "demo.yaml"), filepath.Join(dir, "logs"))
}
