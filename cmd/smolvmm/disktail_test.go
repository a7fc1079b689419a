package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestHiddenTailWarning: run and bench warn, once, of a -d image whose
// size is not a multiple of 512, naming it, its size, the bytes the guest
// does not see and how to pad it; they still use it. An image of whole
// sectors gets no warning.
func TestHiddenTailWarning(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bad := guests.ForTest(t, "bad")
	tests := []struct {
		name string
		cmd  []string
		file string
		size int64
		want string // "" for no warning
	}{
		{"run", []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}, "odd.img", 1000,
			"smolvmm run: warning: -d DIR/odd.img: the image is 1000 bytes, not a whole number of 512-byte sectors, so the guest sees only 512 of them and not the last 488; pad it to whole sectors with: truncate -s %512 DIR/odd.img\n"},
		{"run: a name to quote", []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}, "my disk.img", 4097,
			"smolvmm run: warning: -d DIR/my disk.img: the image is 4097 bytes, not a whole number of 512-byte sectors, so the guest sees only 4096 of them and not the last 1; pad it to whole sectors with: truncate -s %512 'DIR/my disk.img'\n"},
		{"run: whole sectors", []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}, "even.img", 4096, ""},
		{"bench", []string{"bench", "-k", bad, "-a", "halt", "--net", "none", "-n", "2", "--warmup", "0"}, "odd.img", 1000,
			"smolvmm bench: warning: -d DIR/odd.img: the image is 1000 bytes, not a whole number of 512-byte sectors, so the guest sees only 512 of them and not the last 488; pad it to whole sectors with: truncate -s %512 DIR/odd.img\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, tt.file)
			if err := os.WriteFile(img, make([]byte, tt.size), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(smolvmmBin(t), append(tt.cmd, "-d", img)...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			got := stderr.String()
			const head = "warning: -d"
			if tt.want == "" {
				if strings.Contains(got, head) {
					t.Errorf("warned of an image of whole sectors:\n%s", got)
				}
				return
			}
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			if n := strings.Count(got, want); n != 1 {
				t.Errorf("stderr has the warning %d times, want once (exit %v); want\n%s\ngot\n%s", n, err, want, got)
			}
			if n := strings.Count(got, head); n != 1 {
				t.Errorf("%d disk warnings, want 1:\n%s", n, got)
			}
			if st, _ := os.Stat(img); st.Size() != tt.size {
				t.Errorf("the image is %d bytes after the run, was %d", st.Size(), tt.size)
			}
		})
	}
}

// TestHiddenTailWarningSizes: the warning is for an image with whole
// sectors and a partial one after them. An image smaller than one sector
// gets none: the guest sees no part of it because the machine refuses it
// ("a disk needs at least one 512-byte sector"), and a warning that it
// "sees only 0 of them" before that refusal contradicted it.
func TestHiddenTailWarningSizes(t *testing.T) {
	tests := []struct {
		size int64
		warn bool
	}{
		{0, false},
		{3, false},
		{511, false},
		{512, false},
		{513, true},
		{1000, true},
		{4096, false},
	}
	for _, tt := range tests {
		img := filepath.Join(t.TempDir(), "d.img")
		if err := os.WriteFile(img, make([]byte, tt.size), 0o644); err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		warnHiddenTail(&w, "run", img)
		if got := w.Len() > 0; got != tt.warn {
			t.Errorf("%d-byte image: warned %v, want %v: %q", tt.size, got, tt.warn, w.String())
		}
	}
}
