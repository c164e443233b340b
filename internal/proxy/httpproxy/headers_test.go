package httpproxy

import (
	"net/http"
	"testing"
	"time"
)

func TestIsGRPC(t *testing.T) {
	cases := []struct {
		ct    string
		major int
		want  bool
	}{
		{"application/grpc", 2, true},
		{"application/grpc+proto", 2, true},
		{"application/grpc;charset=utf-8", 2, true},
		{"application/grpc-web", 2, false},
		{"application/grpc", 1, false},
		{"application/json", 2, false},
		{"", 2, false},
	}
	for _, tc := range cases {
		r := &http.Request{ProtoMajor: tc.major, Header: http.Header{"Content-Type": {tc.ct}}}
		if got := isGRPC(r); got != tc.want {
			t.Errorf("isGRPC(%q, h%d) = %v, want %v", tc.ct, tc.major, got, tc.want)
		}
	}
}

func TestIsUpgrade(t *testing.T) {
	cases := []struct {
		conn, upgrade string
		want          bool
	}{
		{"Upgrade", "websocket", true},
		{"keep-alive, upgrade", "websocket", true},
		{"keep-alive", "websocket", false},
		{"Upgrade", "", false},
	}
	for _, tc := range cases {
		r := &http.Request{ProtoMajor: 1, Header: http.Header{"Connection": {tc.conn}, "Upgrade": {tc.upgrade}}}
		if got := isUpgrade(r); got != tc.want {
			t.Errorf("isUpgrade(%q, %q) = %v", tc.conn, tc.upgrade, got)
		}
	}
}

func TestParseGRPCTimeout(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1S", time.Second, true},
		{"100m", 100 * time.Millisecond, true},
		{"29998862u", 29998862 * time.Microsecond, true},
		{"5n", 5, true},
		{"2H", 2 * time.Hour, true},
		{"3M", 3 * time.Minute, true},
		{"99999999H", 1<<63 - 1, true},
		{"", 0, false},
		{"S", 0, false},
		{"1s", 0, false},
		{"123456789S", 0, false},
		{"-1S", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseGRPCTimeout(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseGRPCTimeout(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestGRPCMessageEncode(t *testing.T) {
	cases := map[string]string{
		"plain message":  "plain message",
		"100% done":      "100%25 done",
		"ünï":            "%C3%BCn%C3%AF",
		"line\nbreak":    "line%0Abreak",
		"":               "",
		"tab\tand % end": "tab%09and %25 end",
	}
	for in, want := range cases {
		if got := grpcMessageEncode(in); got != want {
			t.Errorf("grpcMessageEncode(%q) = %q, want %q", in, got, want)
		}
	}
}
