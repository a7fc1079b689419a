package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestOutputPlaceAdvice: an output that cannot be made where it was asked
// for, a --service-dir or --leases of the wrong kind, and a cache
// directory that cannot be made were said without what to do; each now
// says it, and --snapshot names the directory, not its temporary file.
// /sys refuses new files even to root (as a directory a user may not
// write refuses them to that user).
func TestOutputPlaceAdvice(t *testing.T) {
	if st, err := os.Stat("/sys/kernel"); err != nil || !st.IsDir() {
		t.Skip("needs /sys")
	}
	dir := testsock.Dir(t)
	afile := filepath.Join(dir, "afile")
	if err := os.WriteFile(afile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	cache := t.TempDir()
	tests := []struct {
		name string
		in   string // the working directory, "" for the test's
		args []string
		want string // all of stderr
	}{
		{"mkimg -i", "", []string{"mkimg", "-i", "/sys/x.img"},
			"smolvmm mkimg: image /sys/x.img: cannot be written: create a file in /sys: permission denied (give -i a path in a directory you can write)"},
		{"mkimg in the current directory", "/sys", []string{"mkimg", "-i", "x.img"},
			"smolvmm mkimg: image x.img: cannot be written: create a file in .: permission denied (give -i a path in a directory you can write, or cd to one)"},
		{"up in the current directory", "/sys", []string{"up", "--cache", cache, "rescue"},
			"smolvmm up: image rescue.img: cannot be written: create a file in .: permission denied (give -i a path in a directory you can write, or cd to one)"},
		{"kstrip -o", "", []string{"kstrip", "-o", "/sys/k", kern},
			"smolvmm kstrip: -o /sys/k: cannot be written: create a file in /sys: permission denied (give -o a path in a directory you can write)"},
		{"run --snapshot", "", []string{"run", "-k", kern, "--net", "none", "--ready", "x", "--snapshot", "/sys/snap"},
			"smolvmm run: --snapshot /sys/snap: cannot create a file in /sys: permission denied (give --snapshot a path in a directory you can write)"},
		{"mkimg --service-dir", "", []string{"mkimg", "--service-dir", afile, "-i", filepath.Join(dir, "x.img")},
			"smolvmm mkimg: --service-dir " + afile + " is a regular file, not a directory: give a directory holding services, each a NAME/etc/rc"},
		{"up --service-dir", "", []string{"up", "--cache", cache, "-i", filepath.Join(dir, "y.img"), "--service-dir", afile, "svc"},
			"smolvmm up: --service-dir " + afile + " is a regular file, not a directory: give a directory holding services, each a NAME/etc/rc"},
		{"net --leases", "", []string{"net", "--socket", filepath.Join(dir, "n.sock"), "--leases", "/dev/null"},
			"smolvmm net: --leases /dev/null is a character device, not a regular file: give a file to keep the leases in (it is made if missing)"},
		{"fetch --cache", "", []string{"fetch", "--cache", "/proc/1"},
			"smolvmm fetch: create cache directory /proc/1/9.3/i386: mkdir /proc/1/9.3: no such file or directory (choose another cache directory with --cache DIR or XDG_CACHE_HOME)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, status := runCLIIn(t, tt.in, tt.args...)
			if msg := strings.TrimSpace(stderr); status != 1 || msg != tt.want {
				t.Errorf("status %d, stderr\n%s\nwant 1 and\n%s", status, msg, tt.want)
			}
		})
	}
}
