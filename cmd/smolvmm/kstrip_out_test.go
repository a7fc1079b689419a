package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestKstripListEditChecksOutput: --list and --json with an edit flag
// (--disable, --enable, --keep, -K) replace the kernel in place,
// yet the checks of the file replaced (write-protected, fetch cache) ran
// only without --list and --json, so a chmod a-w kernel or the fetch
// cache's was rewritten, exit 0. The checks now run whenever the run
// writes; a listing alone, a dry run or an -o elsewhere still reads such
// a kernel.
func TestKstripListEditChecksOutput(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	orig := mustRead(t, kern)
	keepFile := filepath.Join(t.TempDir(), "keep.list")
	os.WriteFile(keepFile, []byte("mainbus\ncpu\ncom_isa\nld_virtio\n"), 0o644)
	// cached lays out a release's kernel directory of a fetch cache
	// (with fetch's lock file) and returns its kernel's path.
	cached := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "9.3", "i386")
		os.MkdirAll(filepath.Join(dir, "kernel"), 0o755)
		os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "kernel", "SHA512"), []byte("SHA512 (netbsd-GENERIC) = 00\n"), 0o644)
		k := filepath.Join(dir, "kernel", "netbsd-GENERIC")
		os.WriteFile(k, orig, 0o644)
		return k
	}
	writeProtected := func(t *testing.T) string {
		k := filepath.Join(t.TempDir(), "netbsd")
		os.WriteFile(k, orig, 0o444)
		return k
	}
	const (
		protected = "is write-protected (mode 0444): kstrip does not replace it"
		inCache   = "is the release's kernel in smolvmm's fetch cache"
	)
	tests := []struct {
		name   string
		kernel func(*testing.T) string
		args   []string // before KERNEL; "OUT" is a new file outside
		code   int
		want   string // in stderr when code is not 0
	}{
		{"list, write-protected", writeProtected, []string{"-l"}, 0, ""},
		{"json, write-protected", writeProtected, []string{"--json"}, 0, ""},
		{"list --disable, write-protected", writeProtected, []string{"-l", "--disable", "pckbc"}, 1, protected},
		{"json --disable, write-protected", writeProtected, []string{"--json", "--disable", "pckbc"}, 1, protected},
		{"list --enable, write-protected", writeProtected, []string{"--list", "--enable", "ne0"}, 1, protected},
		{"json --keep, write-protected", writeProtected, []string{"--json", "--keep", "mainbus,cpu,com_isa"}, 1, protected},
		{"list -K, write-protected", writeProtected, []string{"-l", "-K", keepFile}, 1, protected},
		{"list --disable -n, write-protected", writeProtected, []string{"-l", "-n", "--disable", "pckbc"}, 0, ""},
		{"list --disable -o, write-protected", writeProtected, []string{"-l", "--disable", "pckbc", "-o", "OUT"}, 0, ""},
		{"list, fetch cache", cached, []string{"-l"}, 0, ""},
		{"json, fetch cache", cached, []string{"--json"}, 0, ""},
		{"json --disable, fetch cache", cached, []string{"--json", "--disable", "pckbc"}, 2, inCache},
		{"list --keep, fetch cache", cached, []string{"-l", "--keep", "mainbus,cpu,com_isa"}, 2, inCache},
		{"json -K, fetch cache", cached, []string{"--json", "-K", keepFile}, 2, inCache},
		{"list --disable -o, fetch cache", cached, []string{"-l", "--disable", "pckbc", "-o", "OUT"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.kernel(t)
			out := filepath.Join(t.TempDir(), "out")
			args := make([]string, 0, len(tt.args)+1)
			for _, a := range tt.args {
				if a == "OUT" {
					a = out
				}
				args = append(args, a)
			}
			_, stderr, code := runKstripCLI(append(args, k)...)
			if code != tt.code || tt.code != 0 && !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, tt.code, tt.want, stderr)
			}
			if !bytes.Equal(mustRead(t, k), orig) {
				t.Error("the kernel was replaced")
			}
		})
	}
}

// TestKstripGzipFollowsTarget: whether the kernel is written gzipped
// followed the name as given, while a symlink's target is what is
// replaced: kstrip of a link "netbsd" to real.gz left real.gz a plain ELF
// file, and of "netbsd.gz" to a plain "real" a gzipped one. The name of
// the file replaced now decides, in place and with -o.
func TestKstripGzipFollowsTarget(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	want := libStrip(t, kern, kstrip.Plan{Strip: true, Keep: kstrip.DefaultKeep, IgnoreUnknown: true})
	tests := []struct {
		name       string
		link, real string // names in one directory: link -> real
		out        bool   // link is -o's; else the kernel, replaced in place
		gzip       bool   // real is gzipped after
	}{
		{"in place, link to .gz", "netbsd", "real.gz", false, true},
		{"in place, .gz link to a plain file", "netbsd.gz", "real", false, false},
		{"-o, link to .gz", "out", "real.gz", true, true},
		{"-o, .gz link to a plain file", "out.gz", "real", true, false},
		{"-o, link to a new .gz", "new", "new-real.gz", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			link, real := filepath.Join(dir, tt.link), filepath.Join(dir, tt.real)
			args := []string{link}
			if tt.out {
				args = []string{"-o", link, kern}
				if !strings.HasPrefix(tt.link, "new") {
					// An older kernel: -o replaces no other file without -f.
					os.WriteFile(real, mustRead(t, kern), 0o644)
				}
			} else {
				b := mustRead(t, kern)
				if strings.HasSuffix(tt.real, ".gz") {
					b = gzipBytes(b)
				}
				os.WriteFile(real, b, 0o644)
			}
			if err := os.Symlink(tt.real, link); err != nil {
				t.Fatal(err)
			}
			if _, stderr, code := runKstripCLI(args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s is no longer a symlink: %v", link, err)
			}
			got := mustRead(t, real)
			if isGz := bytes.HasPrefix(got, []byte{0x1f, 0x8b}); isGz != tt.gzip {
				t.Fatalf("%s gzipped: %v, want %v", tt.real, isGz, tt.gzip)
			}
			if tt.gzip {
				got = gunzipBytes(t, got)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the library's result", tt.real)
			}
		})
	}
}
