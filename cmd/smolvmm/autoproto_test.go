package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// A -a too long for a multiboot kernel under --boot auto is refused
// (status 2) after reading only the kernel's headers: the protocol was
// learnt by loading the kernel and every --module into scratch guest
// memory of -m MiB, so that sparse modules of 500 MiB made the refusal
// cost 1 GB of RSS and half a second each (3 GB, 12 s with three).
func TestAppendLengthAutoReadsNoModule(t *testing.T) {
	bin := smolvmmBin(t)
	counter := guests.ForTest(t, "counter")
	dir := t.TempDir()
	long := strings.Repeat("x", 300)
	tests := []struct {
		name    string
		modules int
		mem     string
	}{
		{"one module", 1, "600"},
		{"three modules", 3, "1600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{bin, "run", "-k", counter, "-m", tt.mem, "--net", "none", "--boot", "auto", "-a", long}
			for i := range tt.modules {
				args = append(args, "--module", sparse(t, filepath.Join(dir, fmt.Sprintf("sp%d", i)), nil, 500<<20))
			}
			got := runRSSHelper(t, args)
			if got.Exit != 2 {
				t.Fatalf("run: %s, want exit status 2\n%s", got.Err, got.Out)
			}
			if want := "smolvmm run: -a: 300 bytes"; !strings.Contains(got.Out, want) {
				t.Errorf("run said %q, want %q", got.Out, want)
			}
			t.Logf("run's peak RSS %d KiB, its helper's %d KiB", got.Maxrss, got.HWM)
			// Well under one module's 500 MiB; --boot multiboot takes ~12 MiB.
			if got.Maxrss > 64<<10 {
				t.Errorf("run's peak RSS was %d KiB (its helper's %d KiB): the modules were loaded", got.Maxrss, got.HWM)
			}
		})
	}
}
