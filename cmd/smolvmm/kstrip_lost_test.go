package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestKstripSummaryLost: with standard output full, kstrip KERNEL
// replaced the kernel, then said only "writing standard output: no space
// left on device", status 1, as if nothing had been done. The line now
// says the kernel (or OUT) was written and only what was printed of it
// was lost; a run that wrote nothing still says only that the output was
// lost. Status 1 either way: output was lost.
func TestKstripSummaryLost(t *testing.T) {
	bin := smolvmmBin(t)
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	old := mustRead(t, kern)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	const lost = "writing standard output: no space left on device (free some space, or redirect the output elsewhere)"
	tests := []struct {
		name    string
		args    []string // K is the kernel's copy, OUT a new file beside it
		written string   // "K", "OUT" or "" (nothing written)
		want    string   // stderr's last line, after "smolvmm kstrip: "
	}{
		{"in place", []string{"K"}, "K", "K was written; only its summary was lost: " + lost},
		{"-o", []string{"-o", "OUT", "K"}, "OUT", "OUT was written; only its summary was lost: " + lost},
		{"--list --disable", []string{"--list", "--disable", "pckbc", "K"}, "K", "K was written; only its summary and table were lost: " + lost},
		{"--json --disable", []string{"--json", "--disable", "pckbc", "K"}, "K", "K was written; only its JSON was lost: " + lost},
		{"--dry-run", []string{"--dry-run", "K"}, "", lost},
		// The summary's error and the table's were both said.
		{"--list --dry-run --disable", []string{"--list", "--dry-run", "--disable", "pckbc", "K"}, "", lost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k, out := filepath.Join(dir, "netbsd"), filepath.Join(dir, "out")
			if err := os.WriteFile(k, old, 0o644); err != nil {
				t.Fatal(err)
			}
			names := strings.NewReplacer("OUT", out, "K", k)
			args := []string{"kstrip"}
			for _, a := range tt.args {
				if a == "K" || a == "OUT" {
					a = names.Replace(a)
				}
				args = append(args, a)
			}
			cmd := exec.Command(bin, args...)
			cmd.Stdout = full
			status, stderr := runStatus(t, cmd)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			want := "smolvmm kstrip: " + names.Replace(tt.want)
			if status != 1 || lines[len(lines)-1] != want || strings.Count(stderr, "standard output") != 1 {
				t.Errorf("status %d, stderr:\n%s\nwant status 1, the last line\n%s\nand standard output named once", status, stderr, want)
			}
			gotK := mustRead(t, k)
			gotOut, _ := os.ReadFile(out)
			switch tt.written {
			case "K":
				if bytes.Equal(gotK, old) || !bytes.HasPrefix(gotK, []byte("\x7fELF")) {
					t.Errorf("the kernel was not stripped")
				}
			case "OUT":
				if !bytes.Equal(gotK, old) || !bytes.HasPrefix(gotOut, []byte("\x7fELF")) || bytes.Equal(gotOut, old) {
					t.Errorf("the kernel changed or OUT is no stripped kernel (%.8q)", gotOut)
				}
			default:
				if !bytes.Equal(gotK, old) || gotOut != nil {
					t.Errorf("a dry run wrote something")
				}
			}
		})
	}
}
