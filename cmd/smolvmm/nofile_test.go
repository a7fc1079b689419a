package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
)

// TestLowOpenFilesLimit: under a low RLIMIT_NOFILE every command ends
// in its own error, status 1, or does its work, never in the Go
// runtime's crash (its poller's epoll or eventfd finding no room at the
// first os.Open, after smolvmm's raw opens of /dev/kvm or --snapshot's
// temporaries took the last numbers): "fatal error: runtime: eventfd
// failed", status 2. help and version, which open nothing, work at any
// limit (a floor of 12 for every command refused them).
func TestLowOpenFilesLimit(t *testing.T) {
	bin := smolvmmBin(t)
	counter := guests.ForTest(t, "counter")
	dir := t.TempDir()
	data := oneFileDir(t, dir)
	type cmd struct {
		name   string
		args   []string
		always bool // does its work at every limit
	}
	cmds := []cmd{
		{"version", []string{"version"}, true},
		{"help", []string{"help", "run"}, true},
		{"kstrip --help", []string{"kstrip", "--help"}, true},
		{"mkimg", []string{"mkimg", "-f", "--data", data, "-i", filepath.Join(dir, "x.img")}, false},
	}
	if kvmUsable() {
		cmds = append(cmds,
			cmd{"demo", []string{"demo"}, false},
			cmd{"run --snapshot", []string{"run", "-k", counter, "--net", "none", "--snapshot", filepath.Join(dir, "q.snap"), "--snapshot-exit"}, false})
	}
	for _, limit := range []int{5, 6, 7, 8, 9, 10, 11, 12} {
		for _, c := range cmds {
			t.Run(strconv.Itoa(limit)+"/"+c.name, func(t *testing.T) {
				status, stderr := runNofile(t, bin, limit, 0, c.args)
				if strings.Contains(stderr, "fatal error") || strings.Contains(stderr, "goroutine ") {
					t.Fatalf("status %d, the runtime's crash:\n%s", status, stderr)
				}
				if c.always {
					if status != 0 || stderr != "" {
						t.Fatalf("status %d, stderr %q; want 0 and nothing", status, stderr)
					}
					return
				}
				if status == 0 {
					return
				}
				if status != 1 || !strings.Contains(stderr, "too many open files") && !strings.Contains(stderr, "no room for 3 descriptors at start") {
					t.Fatalf("status %d, stderr:\n%s\nwant 0, or 1 and an error saying the descriptors ran out", status, stderr)
				}
			})
		}
	}
}

// TestInheritedFullTable: descriptors the caller left open that fill the
// table, where closeInherited leaves them (a command that runs no VM),
// leave no room for the runtime's poller: refused with the limit and
// what is open, status 1, where the runtime crashed.
func TestInheritedFullTable(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	// 3 standard, 11 inherited (3 to 13): 2 or fewer numbers below 16
	// free, whatever the runtime holds from its start, which depends on
	// the host: its cgroup's CPU limit files (2 under cgroup v1, 1 under
	// v2, none without a cpu cgroup). With 10 inherited, a host where it
	// holds none left 3 free, and mkimg went on to fail later.
	status, stderr := runNofile(t, bin, 16, 11, []string{"mkimg", "-f", "--data", dir, "-i", filepath.Join(dir, "x.img")})
	if status != 1 || !strings.HasPrefix(stderr, "smolvmm mkimg: no room for 3 descriptors at start (the limit of open files, RLIMIT_NOFILE, is 16, with ") ||
		!strings.Contains(stderr, "(raise it: ulimit -n, or LimitNOFILE= in a systemd unit; or close what the caller leaves open)") {
		t.Fatalf("status %d, stderr:\n%s", status, stderr)
	}
}

// runNofile runs bin with args under RLIMIT_NOFILE limit (soft and
// hard), with extra descriptors inherited above the standard three, and
// returns its exit status and stderr.
func runNofile(t *testing.T, bin string, limit, extra int, args []string) (int, string) {
	t.Helper()
	status, _, stderr := runNofileTimed(t, bin, limit, extra, args) // limitadvice_test.go
	return status, stderr
}

// oneFileDir makes dir/data holding one small file, a --data directory,
// and returns its path.
func oneFileDir(t *testing.T, dir string) string {
	t.Helper()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}
