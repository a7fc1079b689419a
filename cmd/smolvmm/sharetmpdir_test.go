package main

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/urfave/cli/v2"
)

// TestShareHoldingTMPDIR: --share of a directory that holds TMPDIR,
// where the disk image is built (--share /tmp, or ~ with TMPDIR=~/tmp),
// is shared, the image left out of itself (imagebuilder's test shows the
// guest sees no file of it), and removed as the guest starts. It was
// refused, status 1: the check meant for mkimg --data, whose image would
// hold the last one, applied to run's new, empty, temporary image.
func TestShareHoldingTMPDIR(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	kernel := filepath.Join(dir, "kernel")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	// Without KVM: the share is built, and the run ends at the device.
	_, stderr, status := runCLI(t, "run", "-k", kernel, "--net", "none", "--share", dir, "--kvm-device", filepath.Join(dir, "nokvm"))
	if want := "KVM is not available"; status != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "--share") {
		t.Errorf("status %d, stderr:\n%s\nwant status 1 and %q, nothing about --share", status, stderr, want)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-share-*")); len(left) != 0 {
		t.Errorf("temporary images left behind: %v", left)
	}
	if !kvmUsable() {
		t.Skip("needs /dev/kvm to boot the demo guest with the share")
	}
	out, err := exec.Command(smolvmmBin(t), "demo", "--share", dir+",ro").CombinedOutput()
	if err != nil {
		t.Fatalf("smolvmm demo --share %s with TMPDIR %s: %v\n%s", dir, tmp, err, out)
	}
	if !strings.Contains(string(out), "1af4:1001 rev 00 class 010000 subsys 1af4:0002") {
		t.Errorf("shared disk not on the PCI bus:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "smolvmm-share-*")); len(left) != 0 {
		t.Errorf("temporary images left behind: %v", left)
	}
}

// TestShareLeavesOutEarlierShares: with TMPDIR inside a later share
// (--share DIR/a --share DIR, TMPDIR in DIR), the later share's image
// holds none of the run's temporaries: the earlier share's 34 MiB image
// was copied into it, only the later image itself left out. Each image
// has a directory of its own in TMPDIR, and cleanup removes them all.
func TestShareLeavesOutEarlierShares(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{tmp, filepath.Join(dir, "a")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	var got []string
	cmd := runCommand()
	cmd.Action = func(c *cli.Context) error {
		cfg, cleanup, err := vmConfig(c.Context, c)
		if err != nil {
			cleanup()
			return err
		}
		if len(cfg.Disks) != 2 {
			cleanup()
			return fmt.Errorf("%d disks, want 2", len(cfg.Disks))
		}
		got = imageNames(t, cfg.Disks[1].Path)
		cleanup()
		return nil
	}
	app := newApp([]*cli.Command{cmd})
	app.ExitErrHandler = func(*cli.Context, error) {}
	if err := app.Run([]string{"smolvmm", "run", "-k", "x", "--net", "none",
		"--share", filepath.Join(dir, "a"), "--share", dir}); err != nil {
		t.Fatal(err)
	}
	if g, want := strings.Join(got, ", "), "a, a/x, tmp"; g != want {
		t.Errorf("second share's image holds %s, want %s", g, want)
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("TMPDIR holds %v (%v) after cleanup, want nothing", left, err)
	}
}

// imageNames is every path in the FAT32 image img, lower case, sorted.
func imageNames(t *testing.T, img string) []string {
	t.Helper()
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var walk func(dir string)
	walk = func(dir string) {
		es, err := fsys.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Name() == "." || e.Name() == ".." {
				continue
			}
			n := path.Join(dir, e.Name())
			names = append(names, strings.ToLower(n))
			if e.IsDir() {
				walk(n)
			}
		}
	}
	walk(".")
	sort.Strings(names)
	return names
}
