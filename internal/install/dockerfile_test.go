package install

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// This machine has no container engine: the Dockerfiles cannot be built
// here. These tests parse them and check what matters of them.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one build stage: its FROM and what follows.
type stage struct {
	from  string // the image (and "AS name")
	insts []instruction
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in.args})
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s: %s before the first FROM", path, in.cmd)
			}
			return
		}
		stages[len(stages)-1].insts = append(stages[len(stages)-1].insts, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.insts {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// goVersion is the major.minor of go.mod's go directive.
func goVersion(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfiles(t *testing.T) {
	goV := goVersion(t)
	for _, tc := range []struct {
		file, binary, pkg string
		build             []string // must appear in the go build command
	}{
		{"weft.Dockerfile", "weft", "./cmd/weft", []string{
			"-X github.com/weft-mesh/weft/internal/install.imageRegistry=",
			"-X github.com/weft-mesh/weft/internal/install.imageTag=",
		}},
		{"weft-proxy.Dockerfile", "weft-proxy", "./cmd/weft-proxy", []string{"-tags grpcnotrace"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			stages := parseDockerfile(t, filepath.Join("..", "..", "deploy", "docker", tc.file))
			if len(stages) != 2 {
				t.Fatalf("%d stages, want 2 (builder, final)", len(stages))
			}
			builder, final := stages[0], stages[1]
			if want := "golang:" + goV + " AS build"; builder.from != want {
				t.Errorf("builder FROM %q, want %q (go.mod's Go)", builder.from, want)
			}
			var build string
			for _, run := range builder.all("RUN") {
				if strings.Contains(run, "go build") {
					build = run
				}
			}
			for _, want := range append([]string{"CGO_ENABLED=0", "-trimpath", "-o /out/" + tc.binary + " " + tc.pkg}, tc.build...) {
				if !strings.Contains(build, want) {
					t.Errorf("go build lacks %q: %s", want, build)
				}
			}
			if final.from != "gcr.io/distroless/static-debian12:nonroot" {
				t.Errorf("final FROM %q, want the distroless static nonroot image", final.from)
			}
			users := final.all("USER")
			if len(users) == 0 || !strings.HasPrefix(users[len(users)-1], "65532") {
				t.Errorf("final stage USER %v, want 65532 (non-root, as the manifests' runAsUser)", users)
			}
			if got := final.all("COPY"); len(got) != 1 || got[0] != "--from=build /out/"+tc.binary+" /"+tc.binary {
				t.Errorf("final stage COPY %v: only the binary belongs there", got)
			}
			if got := final.all("ENTRYPOINT"); len(got) != 1 || got[0] != `["/`+tc.binary+`"]` {
				t.Errorf("ENTRYPOINT %v, want the exec form of /%s", got, tc.binary)
			}
			if got := final.all("RUN"); len(got) > 0 {
				t.Errorf("the final stage runs commands (it has no shell): %v", got)
			}
		})
	}
	// The runAsUser of the manifests is the images' user.
	if nonRootID != 65532 {
		t.Errorf("manifests run as %d, images as 65532", nonRootID)
	}
	_ = imageRegistry + imageTag // the variables the -X flags set exist
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum", "cmd", "internal", "pkg", "api", "deploy/crds", "deploy/embed.go"}
	for _, line := range strings.Split(string(b), "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") || strings.HasPrefix(p, "!") {
			continue
		}
		for _, n := range needed {
			if ok, _ := filepath.Match(p, n); ok || p == n || strings.HasPrefix(n, p+"/") {
				t.Errorf(".dockerignore excludes %s (pattern %q), which the build needs", n, p)
			}
		}
	}
}
