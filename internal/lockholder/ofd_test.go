package lockholder

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestHoldsOFD(t *testing.T) {
	const want = "fe:00:9978298"
	for _, tc := range []struct {
		name       string
		fdinfo     string
		start, end int64
		held       bool
	}{
		{"inside", "pos:\t0\nlock:\t1: OFDLCK ADVISORY  READ -1 fe:00:9978298 100 101\n", 101, 101, true},
		{"overlapping", "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:9978298 100 101\n", 90, 100, true},
		{"before", "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:9978298 100 101\n", 201, 201, false},
		{"to EOF", "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:9978298 0 EOF\n", 201, 201, true},
		{"second lock", "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:9978298 100 101\nlock:\t2: OFDLCK ADVISORY  READ -1 fe:00:9978298 201 201\n", 201, 201, true},
		{"another file", "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:99782980 100 101\n", 100, 100, false},
		{"a POSIX lock", "lock:\t1: POSIX  ADVISORY  READ 77 fe:00:9978298 100 101\n", 100, 100, false},
		{"a flock", "lock:\t1: FLOCK  ADVISORY  WRITE 77 fe:00:9978298 0 EOF\n", 100, 100, false},
		{"garbage", "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:9978298 x 101\nlock:\n", 100, 100, false},
	} {
		if got := holdsOFD([]byte(tc.fdinfo), want, tc.start, tc.end); got != tc.held {
			t.Errorf("%s: holdsOFD(%d..%d) = %v, want %v", tc.name, tc.start, tc.end, got, tc.held)
		}
	}
}

// TestDescribeRange takes OFD locks, as QEMU does, through a second open
// file description in this process, and finds this process holding
// them, on those bytes only; f's own description's locks are not
// another's.
func TestDescribeRange(t *testing.T) {
	if _, err := os.Stat("/proc/self/fdinfo"); err != nil {
		t.Skipf("no /proc/self/fdinfo here: %v", err)
	}
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	holder, other := open(), open()
	lk := unix.Flock_t{Type: unix.F_RDLCK, Start: 100, Len: 2}
	if err := unix.FcntlFlock(holder.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	self := "process " + strconv.Itoa(os.Getpid()) + " ("
	for _, tc := range []struct {
		name       string
		f          *os.File
		pid        int
		start, end int64
		want       string // prefix; "" for none
	}{
		{"the locked bytes", other, -1, 101, 101, self},
		{"other bytes", other, -1, 200, 201, ""},
		{"its own description", holder, -1, 100, 101, ""},
		{"a known pid", other, os.Getpid(), 300, 300, self},
	} {
		got := DescribeRange(tc.f, tc.pid, tc.start, tc.end)
		if tc.want == "" && got != "" || tc.want != "" && (!strings.HasPrefix(got, tc.want) || !strings.Contains(got, filepath.Base(os.Args[0]))) {
			t.Errorf("%s: DescribeRange = %q, want %q and this test binary's name", tc.name, got, tc.want)
		}
	}
}
