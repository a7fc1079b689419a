package main

import (
	"strings"
	"testing"
)

// TestParseShareAndModuleCommas: --share and --module take a path with a
// comma written twice, as -d does, where the first comma always ended the
// path: a directory "c,d" could not be shared ("unknown option d") and a
// module "x,y.img" was looked for as "x".
func TestParseShareAndModuleCommas(t *testing.T) {
	shares := []struct {
		spec, dir string
		ro        bool
		err       string
	}{
		{"data", "data", false, ""},
		{"data,ro", "data", true, ""},
		{"c,,d", "c,d", false, ""},
		{"c,,d,ro", "c,d", true, ""},
		{"data,,ro", "data,ro", false, ""},
		{"c,d", "", false, `unknown option "d"`},
		{"data,ro,ro", "", false, "ro given twice"},
		{"data,rw", "", false, `unknown option "rw"`},
		{",ro", "", false, "empty directory path"},
	}
	for _, tt := range shares {
		dir, ro, err := parseShareSpec(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseShareSpec(%q) = %q, %v, %v; want an error saying %q", tt.spec, dir, ro, err, tt.err)
			}
			continue
		}
		if err != nil || dir != tt.dir || ro != tt.ro {
			t.Errorf("parseShareSpec(%q) = %q, %v, %v; want %q, %v", tt.spec, dir, ro, err, tt.dir, tt.ro)
		}
	}
	modules := []struct{ spec, path, args string }{
		{"mod.kmod", "mod.kmod", ""},
		{"mod.kmod,kmod", "mod.kmod", "kmod"},
		{"x,,y.img", "x,y.img", ""},
		{"x,,y.img,a,b", "x,y.img", "a,b"},
		{"cmd,a,,b", "cmd", "a,,b"},
	}
	for _, tt := range modules {
		path, args, err := parseModuleSpec(tt.spec)
		if err != nil || path != tt.path || args != tt.args {
			t.Errorf("parseModuleSpec(%q) = %q, %q, %v; want %q, %q", tt.spec, path, args, err, tt.path, tt.args)
		}
	}
}
