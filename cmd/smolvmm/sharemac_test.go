package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/urfave/cli/v2"
)

// TestShareMACStable: the default MAC of a VM whose first disk is a
// --share image is derived from the share directory's absolute path, so
// that it is the same each run (and on a shared network the lease too),
// whichever way the directory is named; -d disks come before the shares,
// so with one the MAC is the first -d image's. It was derived from the
// share's temporary image, a new path each run.
func TestShareMACStable(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm to boot the vnet guest")
	}
	kernel := guests.ForTest(t, "vnet")
	parent := t.TempDir()
	share := filepath.Join(parent, "sh")
	img := filepath.Join(parent, "a.img")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "f.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// 52:54:00 and the first three bytes of SHA-256 of the seed, as the
	// --mac flag's help says.
	macOf := func(seed string) string {
		h := sha256.Sum256([]byte(seed))
		return fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
	}
	macLine := regexp.MustCompile(`vnet: mac ([0-9a-f:]{17})`)
	tests := []struct {
		name string
		dir  string // working directory
		args []string
		want string
	}{
		{"share", "", []string{"--share", share}, macOf(share)},
		{"share again", "", []string{"--share", share}, macOf(share)},
		{"share relative, ro", parent, []string{"--share", "sh/,ro"}, macOf(share)},
		{"two shares", "", []string{"--share", share, "--share", parent}, macOf(share)},
		{"-d before --share", parent, []string{"--share", share, "-d", "a.img"}, macOf(img)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "-k", kernel, "-m", "32", "-a", "timeout=30"}, tt.args...)
			stdout, stderr, status := runCLIIn(t, tt.dir, args...)
			m := macLine.FindStringSubmatch(stdout)
			if m == nil {
				t.Fatalf("status %d, no MAC printed:\n%s\n%s", status, stdout, stderr)
			}
			if m[1] != tt.want {
				t.Errorf("guest's MAC %s, want %s", m[1], tt.want)
			}
		})
	}
}

// TestMACSeed: which disk the default MAC comes from, as vmConfig orders
// them (-d images, then --share images) and up puts its image first: a
// --share image only when it is the first disk, and then its directory
// (written as given: parseNetValues makes it absolute).
func TestMACSeed(t *testing.T) {
	share := blk.Spec{Path: "/tmp/smolvmm-share-1/share.img"}
	tests := []struct {
		name  string
		args  []string
		disks []blk.Spec
		want  string
	}{
		{"no disk", nil, nil, ""},
		{"-d", []string{"-d", "a.img"}, []blk.Spec{{Path: "a.img"}}, "a.img"},
		{"share", []string{"--share", "s,,1,ro"}, []blk.Spec{share}, "s,1"},
		{"two shares", []string{"--share", "s1", "--share", "s2"}, []blk.Spec{share, share}, "s1"},
		{"-d and share", []string{"--share", "s", "-d", "a.img"}, []blk.Spec{{Path: "a.img"}, share}, "a.img"},
		{"up's image and share", []string{"--share", "s"}, []blk.Spec{{Path: "svc.img"}, share}, "svc.img"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			// As main.go's app: a comma in a value is the value's.
			app := &cli.App{Name: "smolvmm", DisableSliceFlagSeparator: true, Commands: []*cli.Command{{
				Name:   "run",
				Flags:  runFlags(),
				Action: func(c *cli.Context) error { got = macSeed(c, tt.disks); return nil },
			}}}
			if err := app.Run(append([]string{"smolvmm", "run"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("seed %q, want %q", got, tt.want)
			}
		})
	}
}
