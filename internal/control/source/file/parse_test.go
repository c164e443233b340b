package file

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDecode checks the strict decoder on documents that are valid YAML.
func TestDecode(t *testing.T) {
	const svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
	// mergeBomb defines l0..l6, each merging the previous one 10 times:
	// 10^6 merges of a 1-key mapping.
	var bomb strings.Builder
	bomb.WriteString("apiVersion: v1\nkind: Service\nx:\n  l0: &l0 {a: b}\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&bomb, "  l%d: &l%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	bomb.WriteString("metadata: {name: s, labels: {<<: *l6}}\n")
	var many strings.Builder
	many.WriteString(svc + "spec:\n  ports:\n")
	for range 30 {
		many.WriteString("  - port: x\n")
	}

	cases := []struct {
		name string
		doc  string
		// want: the problems, "line: field: message prefix"; none means
		// the document is valid.
		want []string
	}{
		{name: "valid", doc: svc + "spec: {ports: [{port: 80, targetPort: 8080}]}\n"},
		{name: "merge keys", doc: "apiVersion: v1\nkind: Service\nmetadata:\n  <<: {name: base, namespace: shop}\n  name: s\n"},
		{name: "aliases", doc: "apiVersion: v1\nkind: Service\nx: &p {port: 80}\nmetadata: {name: s}\nspec: {ports: [*p]}\n",
			want: []string{`3: x: unknown field "x"`}},
		{name: "YAML 1.1 booleans", doc: svc + "spec: {publishNotReadyAddresses: yes}\n"},
		{name: "not a boolean", doc: svc + "spec: {publishNotReadyAddresses: maybe}\n",
			want: []string{`4: spec.publishNotReadyAddresses: want true or false, got the string "maybe"`}},
		{name: "null is the zero value", doc: svc + "spec:\n  ports:\n  selector: ~\n"},
		{name: "int or string", doc: svc + "spec: {ports: [{port: 80, targetPort: [1]}]}\n",
			want: []string{"4: spec.ports[0].targetPort: invalid value [1]"}},
		{name: "timestamp", doc: "apiVersion: v1\nkind: Service\nmetadata: {name: s, creationTimestamp: yesterday}\n",
			want: []string{`3: metadata.creationTimestamp: invalid value "yesterday"`}},
		{name: "string wanted", doc: "apiVersion: v1\nkind: Service\nmetadata: {name: 7}\n",
			want: []string{`3: metadata.name: want a string, got the number 7; quote it ("7")`}},
		{name: "list wanted", doc: svc + "spec: {ports: {port: 80}}\n",
			want: []string{"4: spec.ports: want a list, got a mapping"}},
		{name: "mapping wanted", doc: svc + "spec: [1]\n",
			want: []string{"4: spec: want a mapping of fields, got a list"}},
		{name: "complex key", doc: svc + "spec: {[a]: 1}\n",
			want: []string{"4: spec: a mapping key must be a plain value"}},
		{name: "out of range", doc: svc + "spec: {ports: [{port: 4294967296}]}\n",
			want: []string{"4: spec.ports[0].port: 4294967296 is out of range for a int32"}},
		{name: "duplicate map key", doc: "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  labels: {a: b, a: c}\n",
			want: []string{`5: metadata.labels.a: key "a" is set twice`}},
		{name: "merge bomb", doc: bomb.String(),
			want: []string{`3: x: unknown field "x"`, "4: metadata.labels: the document expands to more than 100000 nodes"}},
		{name: "problems are capped", doc: many.String(),
			want: append(func() []string {
				var w []string
				for i := range maxDocProblems {
					w = append(w, fmt.Sprintf(`%d: spec.ports[%d].port: want an integer, got the string "x"`, 6+i, i))
				}
				return w
			}(), "16: spec.ports[10].port: and 20 more problems")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			docs, _, err := splitDocuments([]byte(tc.doc))
			if err != nil || len(docs) != 1 {
				t.Fatalf("split: %d documents, %v", len(docs), err)
			}
			res, problems := parseDocument("f.yaml", docs[0], t0)
			var got []string
			for _, p := range problems {
				got = append(got, fmt.Sprintf("%d: %s: %s", p.Line, p.Field, p.Message))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], tc.want[i])
				}
			}
			if (res != nil) != (len(tc.want) == 0) {
				t.Errorf("resource %v with %d problems", res, len(problems))
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestSplitDocuments(t *testing.T) {
	docs, line, err := splitDocuments([]byte("# only a comment\n---\na: 1\n---\n---\nb: 2\n---\nc: [\n"))
	if len(docs) != 2 || docs[0].line != 3 || docs[1].line != 6 {
		t.Errorf("documents %+v", docs)
	}
	if err == nil || line != 8 {
		t.Errorf("error %v at line %d, want one at line 8", err, line)
	}
}
