// Package debiankernels gives tests the third-party multiboot kernels of
// Debian's tboot and multiboot packages, fetched with apt-get download and
// unpacked with dpkg-deb into a cache shared by test runs (CacheDir).
//
// Where a kernel cannot be had (no apt-get, no network, no package index),
// a test skips with the reason, unless SMOLVMM_DEBIANKERNELS=require (CI),
// which turns the skip into a failure: CI must load and boot them on every
// run, not pass without them.
package debiankernels

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/smolvmm/smolvmm/internal/usercache"
)

// RequireVar, set to "require", makes a missing Debian kernel fail the test
// that needs it instead of skipping it.
const RequireVar = "SMOLVMM_DEBIANKERNELS"

// CacheDir is where package pkg is unpacked, in root/ below it:
// $XDG_CACHE_HOME/smolvmm-test/debian/pkg (else ~/.cache/..., else, with
// no HOME, below a directory of this user's own in the temporary
// directory, or one of this process's where that is refused:
// usercache.Root).
func CacheDir(pkg string) string {
	cache, _ := usercache.Root()
	return filepath.Join(cache, "smolvmm-test", "debian", pkg)
}

// Missing skips t saying why a kernel is missing, or fails it under
// RequireVar=require.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(RequireVar) == "require" {
		t.Fatalf("%s (%s=require)", why, RequireVar)
	}
	t.Skip(why)
}

var mu sync.Mutex

// File returns path (inside the package's file tree) from Debian package
// pkg, downloading and unpacking the package once; where it cannot be
// downloaded, Missing ends t.
func File(t testing.TB, pkg, path string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	dir := CacheDir(pkg)
	file := filepath.Join(dir, "root", path)
	if _, err := os.Stat(file); err == nil {
		return file
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		Missing(t, "apt-get not available to download Debian package %s", pkg)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		Missing(t, "apt-get download %s failed (no network or package index? run apt-get update): %v\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) == 0 {
		Missing(t, "apt-get download %s left no .deb", pkg)
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(dir, "root")).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s with dpkg-deb: %v\n%s", debs[0], err, out)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("package %s has no %s: %v", pkg, path, err)
	}
	return file
}
