//go:build linux

package netnstest

import (
	"strings"
	"testing"
)

// Veth returns the name of the end of a veth pair that Link put in ns
// ("v" and the last 8 characters of the namespace's name, as Link names
// it).
func (ns *Netns) Veth() string { return "v" + ns.Name[len(ns.Name)-8:] }

// AddAddr adds an address (CIDR form) to ns's end of the veth pair Link
// made. An IPv6 address skips duplicate address detection (nodad), so it
// can be bound and connected from at once instead of after a second or two
// of "tentative".
func (ns *Netns) AddAddr(t testing.TB, cidr string) {
	t.Helper()
	args := []string{"addr", "add", cidr, "dev", ns.Veth()}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	ns.IP(t, args...)
}
