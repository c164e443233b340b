package webhookca

import (
	"encoding/pem"
	"testing"
)

func TestSameCertificates(t *testing.T) {
	block := func(b string) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(b)}))
	}
	a, b := block("anchor-a"), block("anchor-b")
	for _, tc := range []struct {
		name string
		x, y string
		want bool
	}{
		{name: "identical", x: a + b, y: a + b, want: true},
		{name: "other order", x: a + b, y: b + a, want: true},
		{name: "text around", x: "# weft-ca ca.crt\n" + a + "\n", y: a, want: true},
		{name: "one missing", x: a + b, y: a, want: false},
		{name: "different", x: a, y: b, want: false},
		{name: "empty against anchors", x: "", y: a, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameCertificates([]byte(tc.x), []byte(tc.y)); got != tc.want {
				t.Errorf("sameCertificates = %v, want %v", got, tc.want)
			}
		})
	}
}
