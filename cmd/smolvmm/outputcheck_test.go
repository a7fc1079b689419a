package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unwritableDir is a directory no one, root included, can create a file
// in: /proc/sys takes no new entries.
func unwritableDir(t *testing.T) string {
	t.Helper()
	const dir = "/proc/sys"
	if f, err := os.CreateTemp(dir, "smolvmm-test-*"); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Skipf("%s takes new files here", dir)
	}
	return dir
}

// TestOutputsCheckedFirst: an output that cannot be written fails the
// command (status 1) before any work, as the README promises. Each of
// these did the work first: bench booted its VMs, mkimg read the sets
// (here, failed on a missing one), kstrip stripped (here, failed on a
// file that is no kernel), up began its download (here, from a mirror
// nothing answers).
func TestOutputsCheckedFirst(t *testing.T) {
	ro := unwritableDir(t)
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "k.gz")
	if err := os.WriteFile(notKernel, []byte("no kernel here"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := func(name string) string { return filepath.Join(ro, name) }
	tests := []struct {
		name string
		args []string
		want string // the output named in the error
	}{
		{"bench --json", []string{"bench", "-n", "1", "--warmup", "0", "--json", out("x.json")}, "--json " + out("x.json")},
		{"bench --svg", []string{"bench", "-n", "1", "--warmup", "0", "--svg", out("x.svg")}, "--svg " + out("x.svg")},
		{"mkimg", []string{"mkimg", "-x", filepath.Join(dir, "rescue.tgz"), "-i", out("x.img")}, "image " + out("x.img")},
		{"mkimg --data", []string{"mkimg", "--data", filepath.Join(dir, "nodata"), "-i", out("x.img")}, "image " + out("x.img")},
		{"kstrip -o", []string{"kstrip", "-o", out("x.gz"), notKernel}, "-o " + out("x.gz")},
		{"up -i", []string{"up", "--mirror", "http://127.0.0.1:1/pub/NetBSD", "--cache", filepath.Join(dir, "cache"),
			"-i", out("x.img"), "rescue"}, "image " + out("x.img")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runCLIIn(t, dir, tt.args...)
			msg := strings.TrimSpace(stderr)
			if status != 1 || !strings.Contains(msg, tt.want+": cannot be written: ") {
				t.Fatalf("status %d, stderr %q; want 1 and %q", status, msg, tt.want+": cannot be written")
			}
			// One line, and no output: no VM booted, no set or kernel read,
			// no download begun.
			if strings.Contains(msg, "\n") || stdout != "" {
				t.Errorf("work was done before the output was checked:\nstdout %q\nstderr %q", stdout, msg)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "cache")); len(ents) != 0 {
		t.Errorf("up wrote to its cache: %v", ents)
	}
}
