package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
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

// TestDataReproducible: mkimg --data gave a new image at every build:
// each entry carried the build's time, not its file's, an ISO 9660 image
// the builder's time zone and uid, and --timestamp was refused. The same
// directory with the same times and the same --timestamp (or
// SOURCE_DATE_EPOCH) gives the same bytes, built in another time zone, a
// second later, and (as root) by another user.
func TestDataReproducible(t *testing.T) {
	kolkata := kolkataTZ(t)
	data, out := openTempDir(t, false), openTempDir(t, true)
	if err := os.Mkdir(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2011, 12, 13, 14, 15, 17, 0, time.UTC)
	for _, f := range []string{"top", "sub/f", "sub"} {
		p := filepath.Join(data, f)
		if f != "sub" {
			if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for _, fsType := range []string{"fat32", "iso9660"} {
		t.Run(fsType, func(t *testing.T) {
			var imgs [2]string
			for i := range imgs {
				imgs[i] = filepath.Join(out, fmt.Sprintf("%s-%d.img", fsType, i))
				args := []string{"mkimg", "--data", data, "--fs", fsType, "-i", imgs[i]}
				var cmd *exec.Cmd
				if i == 0 {
					cmd = exec.Command(smolvmmBin(t), append(args, "--timestamp", "1700000000")...)
					cmd.Env = append(os.Environ(), "TZ=UTC", "SOURCE_DATE_EPOCH=")
				} else {
					cmd = asUnprivileged(t, args...) // nobody, as root
					cmd.Env = append(os.Environ(), "TZ="+kolkata, "SOURCE_DATE_EPOCH=1700000000")
				}
				if status, stderr := runStatus(t, cmd); status != 0 {
					t.Fatalf("build %d: status %d\n%s", i, status, stderr)
				}
			}
			a, err := os.ReadFile(imgs[0])
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(imgs[1])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				n := 0
				for i := range min(len(a), len(b)) {
					if a[i] != b[i] {
						n++
					}
				}
				t.Errorf("the two builds differ: %d and %d bytes, %d of them differ", len(a), len(b), n)
			}
		})
	}
}

// kolkataTZ is a TZ value for Asia/Kolkata (UTC+5:30): the host's zone
// file, else a copy of the one in Go's zoneinfo.zip named by its path,
// which Go reads as it does /usr/share/zoneinfo's. A fresh host (a
// container) may have no tzdata, and the test skipped there, which CI
// does not allow.
func kolkataTZ(t *testing.T) string {
	t.Helper()
	const name = "Asia/Kolkata"
	if _, err := os.Stat(filepath.Join("/usr/share/zoneinfo", name)); err == nil {
		return name
	}
	zr, err := zip.OpenReader(filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip"))
	if err != nil {
		t.Skipf("no time zone data (/usr/share/zoneinfo/%s, nor Go's zoneinfo.zip: %v): the time zone cannot be changed", name, err)
	}
	defer zr.Close()
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	// Where the build run as nobody reads it too: unread, Go takes UTC.
	path := filepath.Join(openTempDir(t, false), "Kolkata")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
