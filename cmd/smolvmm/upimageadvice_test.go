package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// upImageFixture builds, with up against a local mirror, rescue.img in a
// new directory, and returns the up command line that boots it again
// (to run in that directory) and the directory.
func upImageFixture(t *testing.T) (args []string, work string) {
	t.Helper()
	upNeedKVM(t)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: gzipBytes(buildUpGuest(t)),
		Sets: map[string][]byte{"rescue.tgz": fetchtest.RescueSet()}})
	t.Cleanup(srv.Close)
	work = t.TempDir()
	args = []string{"up", "--mirror", srv.Mirror(), "--cache", filepath.Join(work, "cache"), "-m", "16", "--net", "none"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, smolvmmBin(t), append(args, "rescue")...)
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("up building rescue.img: %v\n%s", err, out)
	}
	return args, work
}

// holdLock takes the lock a VM holds on its disk image (flock, exclusive)
// on path until the test ends, as another VM using it would.
func holdLock(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

// upInUse is the advice for up's own image in use by another VM.
const upInUse = " (stop that VM, or give up -i another image: a new file, which up builds, or a copy of this one, cp IMAGE COPY, with --keep-image to boot it as it is)"

// TestUpImageInUseAdvice: up's own image (ld0), in use by another VM, was
// advised as a -d ("give ,ro after the image's -d in both"), which up's
// image is not, and which up cannot attach read-only. The advice is now
// up's: stop that VM, or give -i another image. An image up was given
// with -d (ld1) keeps the -d advice, as run's does.
func TestUpImageInUseAdvice(t *testing.T) {
	args, work := upImageFixture(t)
	if err := os.WriteFile(filepath.Join(work, "extra.img"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		locked string
		args   []string
		want   string // the advice, after the refusal's facts
	}{
		{"up's image", "rescue.img", nil, upInUse},
		// The jailed VMM, a run of up's, says it: as up.
		{"up's image, jailed", "rescue.img", []string{"--jail"}, upInUse},
		{"up's -d", "extra.img", []string{"-d", "extra.img"},
			" (stop that VM, or give ,ro after the image's -d in both, or use a copy of the image)"},
		{"up's -d, jailed", "extra.img", []string{"--jail", "-d", "extra.img"},
			" (stop that VM, or give ,ro after the image's -d in both, or use a copy of the image)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if slices.Contains(tt.args, "--jail") && os.Geteuid() != 0 {
				t.Skip("needs root: --jail")
			}
			holdLock(t, filepath.Join(work, tt.locked))
			_, stderr, status := runCLIIn(t, work, append(append(append([]string{}, args...), tt.args...), "rescue")...)
			// A jailed VMM's refusal is followed by the time up's run step
			// took: the jailed process did start.
			var line string
			for l := range strings.Lines(stderr) {
				if strings.Contains(l, "disk image "+tt.locked+" is in use by another VM") {
					line = strings.TrimSuffix(l, "\n")
				}
			}
			if status != 1 || !strings.HasPrefix(line, "smolvmm up: ld") || !strings.HasSuffix(line, tt.want) {
				t.Errorf("status %d, refusal\n%s\nwant status 1, a refusal of %s ending\n%s\nstderr:\n%s", status, line, tt.locked, tt.want, stderr)
			}
			if tt.want != upInUse {
				return
			}
			// The advice is followed: a new image, and a copy of this one.
			if err := copyFile(filepath.Join(work, "rescue.img"), filepath.Join(work, "copy.img")); err != nil { // unreadable_test.go
				t.Fatal(err)
			}
			for _, i := range [][]string{{"-i", "new.img"}, {"-i", "copy.img", "--keep-image"}} {
				_, stderr, status := runCLIIn(t, work, append(append(append([]string{}, args...), i...), "rescue")...)
				if status != 0 {
					t.Errorf("up %v: status %d, stderr:\n%s", i, status, stderr)
				}
				os.Remove(filepath.Join(work, i[1]))
			}
		})
	}
}

// TestUpImageNotWritableAdvice: up's own image, not writable, was advised
// to be attached "read-only with ,ro after its -d path": up has no -d for
// it, and boots it read-write. The advice is up's: make it writable, or
// give -i another image.
func TestUpImageNotWritableAdvice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chattr +i makes the image unwritable even to root, who builds it here")
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("needs chattr (e2fsprogs)")
	}
	args, work := upImageFixture(t)
	img := filepath.Join(work, "rescue.img")
	if out, err := exec.Command("chattr", "+i", img).CombinedOutput(); err != nil {
		t.Skipf("chattr +i: %v: %s (the file system has no immutable flag)", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", img).Run() })
	const want = "smolvmm up: ld0: disk image rescue.img: cannot open it read-write: the image is not writable: operation not permitted (up boots its image read-write: make it writable, or give up -i another image: a new file, which up builds, or a writable copy of this one, cp IMAGE COPY; chmod u+w COPY, with --keep-image to boot it as it is)\n"
	for _, extra := range [][]string{nil, {"--jail"}} {
		_, stderr, status := runCLIIn(t, work, append(append(append([]string{}, args...), extra...), "rescue")...)
		if status != 1 || strings.Count(stderr, want) != 1 {
			t.Errorf("up %v: status %d, want 1 and the refusal\n%s\nstderr:\n%s", extra, status, want, stderr)
		}
	}
}
