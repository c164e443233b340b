// Package capture writes and removes the netfilter rules that send a
// workload's TCP traffic through weft-proxy in transparent mode: connections
// arriving for the workload's ports are redirected to the inbound listener
// (4143), connections the workload opens are redirected to the transparent
// outbound listener (4140), and the proxy's own connections, told apart by
// its UID, are never redirected, so they cannot loop. `weft-proxy init` is
// its command; docs/capture.md describes the rules.
//
// The package is in three parts:
//
//   - Options (options.go): what to capture, parsed from the flags' and pod
//     annotations' text by Settings.Options and checked by Options.Validate,
//     with errors that name the flag and say how to fix it.
//   - Rules and Render (rules.go): a pure function from Options to the rules
//     of weft's own nat chains (WEFT_INBOUND, WEFT_REDIRECT_IN,
//     WEFT_OUTBOUND, WEFT_REDIRECT_OUT) and the two jumps that hook them into
//     PREROUTING and OUTPUT, for IPv4 or IPv6, rendered as iptables-restore
//     input. Golden-tested.
//   - Tables (apply.go, backend.go): applies or reverts the rules in the
//     current network namespace with iptables-restore, one transaction per
//     address family, on the nft or legacy backend (detected as Istio does:
//     whichever holds rules, nft when neither does). Applying is idempotent:
//     weft's chains are flushed and refilled and the jumps added only when
//     absent; reverting removes the jumps and weft's chains and nothing else.
//
// Programs run through a Runner, so tests (and a node-side harness) can bind
// every iptables call to another network namespace with `ip netns exec`.
package capture
