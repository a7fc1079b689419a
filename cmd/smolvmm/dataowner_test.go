package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// isoOwners lists the owner and group xorriso reads from the Rock Ridge
// entries of each file of the ISO 9660 image img, by path.
func isoOwners(t *testing.T, img string) map[string]string {
	t.Helper()
	out, err := exec.Command("xorriso", "-indev", img, "-find", "/", "-exec", "lsdl", "--").Output()
	if err != nil {
		t.Fatalf("xorriso: %v", err)
	}
	owners := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		owners[strings.Trim(f[len(f)-1], "'")] = f[2] + ":" + f[3]
	}
	return owners
}

// TestDataISOOwner: an ISO 9660 data image recorded the building user's
// uid and gid as every file's owner (go-diskfs takes them from the work
// copy it builds from), so the image held who built it, not only the
// directory. Every file is owned by 0:0, whoever built it and whoever
// owns the files.
func TestDataISOOwner(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso is not installed: the image cannot be read")
	}
	data, out := openTempDir(t, false), openTempDir(t, true)
	if err := os.Mkdir(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"top", "sub/f"} {
		if err := os.WriteFile(filepath.Join(data, f), []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{"sub", "top", "sub/f"} {
			if err := os.Lchown(filepath.Join(data, p), 4321, 4321); err != nil {
				t.Fatal(err)
			}
		}
	}
	img := filepath.Join(out, "d.iso")
	cmd := asUnprivileged(t, "mkimg", "--data", data, "--fs", "iso9660", "-i", img)
	if status, stderr := runStatus(t, cmd); status != 0 {
		t.Fatalf("mkimg as another user: status %d\n%s", status, stderr)
	}
	owners := isoOwners(t, img)
	for _, p := range []string{"/", "/sub", "/sub/f", "/top"} {
		if owners[p] != "0:0" {
			t.Errorf("%s: owner %q, want 0:0 (all: %v)", p, owners[p], owners)
		}
	}
}
