package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestRestoreDiskNotWarned: run warned of a -d image starting as a tar
// archive or an ELF file does, or ending in a partial sector, also when
// restoring a snapshot taken on it, whose guest may have written that tar
// archive itself, and whose restore refuses what the warnings advise (an
// image built by mkimg, one padded to whole sectors). A restore no longer
// warns; a boot on the same image still does.
func TestRestoreDiskNotWarned(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	tarDisk := append(setTar(t), make([]byte, 1<<20)...)[:1<<20]
	elfDisk := append(elfFile(), make([]byte, 1<<20)...)[:1<<20]
	const counted = "count 1\r\ncount 2\r\ncount 3\r\ncount 4\r\ncount 5\r\ncounter: done\r\n"
	for _, tt := range []struct {
		name    string
		content []byte
		warning string // what a boot warns of
	}{
		{"tar", tarDisk, "it starts with a tar header (ustar)"},
		{"ELF", elfDisk, "it starts with an ELF header"},
		{"partial sector", make([]byte, 1<<20+100), "not a whole number of 512-byte sectors"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img, snap := snapshotOnDisk(t, dir, tt.content)
			if err := os.WriteFile(filepath.Join(dir, "copy.img"), tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			// The counter's debug-exit 0 is status 1.
			for _, args := range [][]string{
				{"run", "--restore", snap, "--net", "none", "-d", img},
				{"run", "--restore", snap, "--net", "none", "-d", "copy.img"},
				{"run", "--restore", snap, "--net", "none"},
			} {
				out, stderr, status := runCLIIn(t, dir, args...)
				if status != 1 || out != counted || strings.Contains(stderr, "warning") {
					t.Errorf("%s: status %d, stdout %q, stderr:\n%s\nwant status 1, the guest's count and no warning", strings.Join(args, " "), status, out, stderr)
				}
			}
			for _, args := range [][]string{
				{"bench", "--restore", snap, "--net", "none", "-n", "1", "--warmup", "0", "-d", img},
				{"bench", "--restore", snap, "--net", "none", "-n", "1", "--warmup", "0", "-d", "copy.img"},
			} {
				_, stderr, status := runCLIIn(t, dir, args...)
				if status != 0 || strings.Contains(stderr, tt.warning) {
					t.Errorf("%s: status %d, stderr:\n%s\nwant status 0 and no warning of %q", strings.Join(args, " "), status, stderr, tt.warning)
				}
			}
			_, stderr, _ := runCLIIn(t, dir, "run", "-k", guests.ForTest(t, "counter"), "-m", "16", "-a", "n=5 at=2", "--net", "none", "-d", "copy.img")
			if n := strings.Count(stderr, "warning: -d copy.img: "); n != 1 || !strings.Contains(stderr, tt.warning) {
				t.Errorf("a boot on the image warned %d times, want once of %q:\n%s", n, tt.warning, stderr)
			}
		})
	}
}
