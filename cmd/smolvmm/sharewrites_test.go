package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestShareWritesSaid: a guest's writes to a --share disk are answered
// OK, flush included, and thrown away with its temporary image: run says
// so on stderr at exit, with how much (the vblk guest writes one 512-byte
// sector of its first disk: 1 KiB, rounded up), and says nothing when the
// guest wrote no share (a read-only one refuses the write; with a -d
// first, the guest writes that).
func TestShareWritesSaid(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vblk")
	parent := t.TempDir()
	share := filepath.Join(parent, "sh")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "f.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(parent, "a.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	said := "smolvmm run: --share " + share + ": the guest wrote "
	tests := []struct {
		name  string
		args  []string
		guest string // the guest's line saying what it did
		want  string // "" for no line
	}{
		{"written", []string{"--share", share}, "vblk: flush ok", said + "1 KiB to it, discarded with its image"},
		{"read-only", []string{"--share", share + ",ro"}, "vblk: read-only disk, write status", ""},
		{"-d written instead", []string{"-d", img, "--share", share}, "vblk: flush ok", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "-k", kernel, "-m", "32", "--net", "none", "-a", "timeout=30"}, tt.args...)
			stdout, stderr, status := runCLI(t, args...)
			if !strings.Contains(stdout, tt.guest) {
				t.Fatalf("status %d, guest did not say %q:\n%s\n%s", status, tt.guest, stdout, stderr)
			}
			n := strings.Count(stderr, "the guest wrote ")
			switch {
			case tt.want == "" && n != 0:
				t.Errorf("stderr says the guest wrote to the share:\n%s", stderr)
			case tt.want != "" && (n != 1 || !strings.Contains(stderr, tt.want)):
				t.Errorf("stderr does not say %q once:\n%s", tt.want, stderr)
			}
		})
	}
}
