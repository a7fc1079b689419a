package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDashOutputRefused: "-" names standard output only for kstrip -o.
// Every other output flag writes a file by replacement (an image, a
// snapshot, bench's results beside its table on standard output) and
// made a file called "-" in the current directory ("wrote - (5 MiB)"):
// each refuses it now, status 2, before any work, saying how to name such
// a file. The net hub would run on if it took --leases -: each run has a
// deadline.
func TestDashOutputRefused(t *testing.T) {
	tmp := t.TempDir()
	kernel := filepath.Join(tmp, "k")
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cache := t.TempDir()
	kvm := filepath.Join(tmp, "kvm")
	const refused = `"-" is not standard output here: give a file name (./- for a file named -)`
	for _, tt := range []struct {
		name string
		args []string
		flag string
	}{
		{"mkimg -i", []string{"mkimg", "-i", "-", "-x", filepath.Join(tmp, "set.tgz")}, "-i"},
		{"mkimg --data -i", []string{"mkimg", "--data", data, "-i", "-"}, "-i"},
		{"up -i", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "-i", "-", "rescue"}, "-i"},
		{"up --snapshot", []string{"up", "--cache", cache, "--mirror", "http://127.0.0.1:1/pub", "--snapshot", "-", "rescue"}, "--snapshot"},
		{"run --snapshot", []string{"run", "-k", kernel, "--net", "none", "--snapshot", "-", "--kvm-device", kvm}, "--snapshot"},
		{"bench --json", []string{"bench", "-n", "1", "--warmup", "0", "--json", "-", "--kvm-device", kvm}, "--json"},
		{"bench --svg", []string{"bench", "-n", "1", "--warmup", "0", "--svg", "-", "--kvm-device", kvm}, "--svg"},
		{"net --leases", []string{"net", "--socket", filepath.Join(tmp, "n.sock"), "--leases", "-"}, "--leases"},
		{"net --socket", []string{"net", "--socket", "-"}, "--socket"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, smolvmmBin(t), tt.args...)
			cmd.Dir = dir
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || stdout.String() != "" ||
				!strings.Contains(stderr.String(), ": "+tt.flag+" -: "+refused) {
				t.Errorf("%v (stdout %q); want status 2 and %q; stderr:\n%s", err, stdout.String(), tt.flag+" -: "+refused, stderr.String())
			}
			if names := dirNames(t, dir); len(names) != 0 { // snapshotsafe_test.go
				t.Errorf("left in the current directory: %v", names)
			}
		})
	}
}
