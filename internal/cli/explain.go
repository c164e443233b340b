package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/file"
	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/explain"
)

// explainCmd is `weft explain`: what the mesh does with a request, and why.
func explainCmd() *cobra.Command {
	var dir, trustDomain, output string
	var in explain.Input
	var mesh translate.Mesh
	c := &cobra.Command{
		Use:   "explain --from namespace/workload --to service.namespace[:port]",
		Short: "Explain what the mesh does with a request, and why: route, filters, backends, retries, mTLS, authorization",
		Long: `Explain what the mesh will do with one request, from the resources in --dir, with the code the mesh
runs: the control plane's translation renders the configs of the proxies involved, and the proxy's own route
table, policies and authorization evaluator decide the request. In order: the caller and its identity; the
route that matches in the caller's proxy (and why it wins), its filters, weighted backends, timeouts, retry
policy and budget, circuit breaker, rate limit, fault injection and mirrors; each backend's endpoints and
whether the hop is mTLS or plaintext; at each destination workload, the port's mTLS mode and the policy that
set it, and the authorization decision with its deciding policy and rule (or the default policy) and what
dry-run policies would deny; and the problems the control plane reports for the objects involved, with every
invalid document of --dir.`,
		Example: `  weft explain --dir ./mesh --from shop/frontend-1 --to web.shop:80 --path /api/items --header x-canary=true
  weft explain --dir ./mesh --from shop/frontend-1 --to catalog.shop --grpc shop.Catalog/GetItem -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: use text or json", output)
			}
			if in.From == "" || in.To == "" {
				return fmt.Errorf("--from and --to are required, e.g. --from shop/frontend-1 --to web.shop:80")
			}
			if err := mesh.Validate(); err != nil {
				return err
			}
			m, err := explain.Load(cmd.Context(), dir, trustDomain)
			if err != nil {
				return err
			}
			e, err := explain.Explain(cmd.Context(), m, mesh, in)
			if err != nil {
				return err
			}
			if output == "json" {
				return e.WriteJSON(cmd.OutOrStdout())
			}
			return e.WriteText(cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "dir", "weft.d", "directory of the mesh's YAML resources, as for weft control")
	f.StringVar(&in.From, "from", "", "the calling workload, namespace/name")
	f.StringVar(&in.To, "to", "", "the destination service, service.namespace[:port] (or namespace/service[:port]); the port may be left out for a service with one port")
	f.StringVar(&in.Method, "method", "", "HTTP method (default GET; POST for --grpc)")
	f.StringVar(&in.Path, "path", "", "request path, with a query if any (default /)")
	f.StringArrayVar(&in.Headers, "header", nil, "request header name=value (repeatable); host=... sets the Host")
	f.StringVar(&in.GRPC, "grpc", "", "a gRPC call, package.Service/Method")
	f.StringVar(&trustDomain, "trust-domain", "", "SPIFFE trust domain of workload identities (default "+file.DefaultTrustDomain+")")
	f.StringVar(&mesh.RootNamespace, "root-namespace", translate.DefaultRootNamespace, "namespace whose AuthorizationPolicy and MutualTLSPolicy without targetRefs apply to the whole mesh")
	f.StringVar(&mesh.DefaultInboundPolicy, "default-inbound-policy", model.DefaultInboundAllowAll, "who may call a workload no authorization policy covers: "+strings.Join(model.DefaultInboundPolicies(), ", "))
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}
