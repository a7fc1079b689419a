package main

import (
	"os"
	"path/filepath"
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

// TestCLICommasInPaths: every use of --share's and --module's path reads
// a doubled comma as one, where run's directory check, up's checks before
// its download and --snapshot's refusal of a share cut the value at its
// first comma: demo --share 'c,,d' said "--share c: no such file".
func TestCLICommasInPaths(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	top := t.TempDir()
	dir := filepath.Join(top, "c,d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	escaped := strings.ReplaceAll(dir, ",", ",,")
	out, stderr, status := runCLI(t, "demo", "-m", "16", "--share", escaped+",ro")
	if status != 0 || !strings.Contains(out, "1af4:1001 rev 00 class 010000 subsys 1af4:0002") {
		t.Fatalf("demo --share %s,ro: status %d, stderr:\n%s\nstdout:\n%s", escaped, status, stderr, out)
	}

	// up checks --share and --module before it downloads (the mirror is
	// unreachable): a missing path is named whole.
	cache := t.TempDir()
	missing := filepath.Join(top, "e,f")
	for _, flag := range []string{"--share", "--module"} {
		args := []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", flag, strings.ReplaceAll(missing, ",", ",,"), "rescue"}
		_, stderr, status := runCLI(t, args...)
		if status != 1 || !strings.Contains(stderr, missing+": no such file") {
			t.Errorf("up %s %s: status %d, stderr %q; want status 1 naming %s", flag, missing, status, stderr, missing)
		}
	}

	// --snapshot refuses a share, advising an image of the directory
	// named as mkimg --data takes it, read-only as the share was.
	_, stderr, status = runCLI(t, "run", "-k", spinKernel(t), "--net", "none", "--share", escaped+",ro", "--snapshot", filepath.Join(top, "s.snap"))
	for _, want := range []string{"mkimg --data " + dir + " -i IMAGE", "-d IMAGE,ro instead"} {
		if status != 2 || !strings.Contains(stderr, want) {
			t.Errorf("--share %s,ro --snapshot: status %d, stderr %q; want status 2 and %q", escaped, status, stderr, want)
		}
	}
}
