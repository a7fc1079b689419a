// Package realnetbsd finds, for tests, the one genuine NetBSD x86 kernel
// the project can use: NetBSD 5.99.15/i386 (g4u, 2009, built without
// options MULTIBOOT) and its miniroot module. The files are not in the
// repository; they sit in the shared directory beside it (../shared/netbsd
// from the repository's root, or /work/shared/netbsd where the project's
// machines keep it), or wherever SMOLVMM_NETBSD_DIR says, or in the user's
// cache, where `make netbsd-kernel` (.ci/netbsd-kernel) downloads them from
// their public source. Their digests are checked, so a test never boots
// some other file by mistake.
package realnetbsd

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/internal/usercache"
)

// EnvVar names a directory holding netbsd.gz and miniroot.kmod.
const EnvVar = "SMOLVMM_NETBSD_DIR"

// The files and their SHA-256 digests (../shared/netbsd/README.md).
const (
	KernelFile   = "netbsd.gz"
	KernelSHA256 = "36954d18c7f1f91d77a668aa6163b96cfa3cc7e0cbbad2c86a089f02aae45017"
	// KernelRawSHA256 is the uncompressed kernel's digest: a netbsd.gz
	// compressed again (as .ci/run does with the upstream file, which may
	// come uncompressed) is the same kernel if its content has this one.
	KernelRawSHA256 = "a3c3e8237fe48294acfc1e3a00f2c3627238947973d73219ddf648de3756066c"
	ModuleFile      = "miniroot.kmod"
	ModuleSHA256    = "d454d3af2bf9a2ce9e8f0d04870f25087336a7bbebfec42a428a676cdb6e3d0f"
	subdir          = "shared/netbsd/g4u-5.99.15"
)

// machineDir is where the development and CI machines keep the files, for
// a clone that is not beside them (a variable for the tests).
var machineDir = "/work/" + subdir

// Dir returns the directory that holds the files: EnvVar if set, else
// shared/netbsd/g4u-5.99.15 in the first parent of the working directory
// that has it, else machineDir, else CacheDir.
func Dir() (string, error) {
	if d := os.Getenv(EnvVar); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		c := filepath.Join(d, subdir)
		if _, err := os.Stat(filepath.Join(c, KernelFile)); err == nil {
			return c, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if _, err := os.Stat(filepath.Join(machineDir, KernelFile)); err == nil {
		return machineDir, nil
	}
	cache := CacheDir()
	if _, err := os.Stat(filepath.Join(cache, KernelFile)); err == nil {
		return cache, nil
	}
	return "", fmt.Errorf("no %s in any parent of %s nor at %s or %s (set %s)", subdir, wd, machineDir, cache, EnvVar)
}

// CacheDir is where .ci/netbsd-kernel downloads the files:
// $XDG_CACHE_HOME/smolvmm-test/netbsd/g4u-5.99.15, else
// ~/.cache/smolvmm-test/netbsd/g4u-5.99.15, else, with no HOME, the same
// below a directory of this user's own in the temporary directory, or one
// of this process's where that is refused (usercache.Root).
func CacheDir() string {
	cache, _ := usercache.Root()
	return filepath.Join(cache, "smolvmm-test", "netbsd", "g4u-5.99.15")
}

// getIt says how to get the files where they are missing.
const getIt = "`make netbsd-kernel` downloads it from its public source and checks its digests"

// RequireVar, set to "require" (as CI sets it for the nested-KVM rig),
// makes a missing kernel a failure rather than a skip: CI must boot it on
// every run, not pass without it.
const RequireVar = "SMOLVMM_NESTEDKVM"

// Files returns the paths of the kernel and its module. When they cannot
// be found it skips t, or fails it under RequireVar=require; a file
// missing from the directory EnvVar names, or whose digest is not the
// expected one, fails it.
func Files(t testing.TB) (kernel, module string) {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		if os.Getenv(RequireVar) == "require" {
			t.Fatalf("the real NetBSD kernel is not here: %v; %s (%s=require)", err, getIt, RequireVar)
		}
		t.Skipf("the real NetBSD kernel is not here: %v; %s", err, getIt)
	}
	kernel, module = filepath.Join(dir, KernelFile), filepath.Join(dir, ModuleFile)
	for _, f := range []struct{ path, sum, rawSum string }{{kernel, KernelSHA256, KernelRawSHA256}, {module, ModuleSHA256, ""}} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatalf("the real NetBSD kernel: %v", err)
		}
		if err := checkDigest(data, f.sum, f.rawSum); err != nil {
			t.Fatalf("%s: %v: not the 5.99.15 g4u file the tests expect", f.path, err)
		}
	}
	return kernel, module
}

// checkDigest accepts data whose SHA-256 is sum, or, when rawSum is set,
// gzip data whose content's SHA-256 is rawSum.
func checkDigest(data []byte, sum, rawSum string) error {
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) == sum {
		return nil
	}
	if rawSum == "" {
		return fmt.Errorf("sha256 %x, want %s", got, sum)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("sha256 %x, want %s, and not gzip data (%v)", got, sum, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return fmt.Errorf("sha256 %x, want %s, and its gzip data is corrupt (%v)", got, sum, err)
	}
	if raw := hex.EncodeToString(h.Sum(nil)); raw != rawSum {
		return fmt.Errorf("sha256 %x, want %s; uncompressed sha256 %s, want %s", got, sum, raw, rawSum)
	}
	return nil
}
