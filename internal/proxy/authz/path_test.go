package authz

import (
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	cases := map[string]string{
		"":                    "/",
		"/":                   "/",
		"*":                   "/*",
		"/a/b":                "/a/b",
		"/a/b/":               "/a/b/",
		"//a///b":             "/a/b",
		"/a/./b":              "/a/b",
		"/a/../b":             "/b",
		"/../../a":            "/a",
		"/a/b/..":             "/a/",
		"/a/b/.":              "/a/b/",
		"/a/..":               "/",
		"/..":                 "/",
		"/a/.b/..c/...":       "/a/.b/..c/...",
		"/public/../admin/x/": "/admin/x/",
	}
	for in, want := range cases {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/a/../b", "//x", "/./", "/a/.b/", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := cleanPath(p)
		if c == "" || c[0] != '/' || needsCleaning(c) || strings.Contains(c, "//") {
			t.Fatalf("cleanPath(%q) = %q is not clean", p, c)
		}
		if again := cleanPath(c); again != c {
			t.Fatalf("cleanPath is not idempotent: %q -> %q -> %q", p, c, again)
		}
		for seg := range strings.SplitSeq(c, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("cleanPath(%q) = %q keeps a dot segment", p, c)
			}
		}
	})
}
