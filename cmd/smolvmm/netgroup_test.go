package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkOwnGroup: without root, --group takes only a group the process
// has (its effective or a supplementary one); root any. A group the user
// is listed in but this login has not got is told to log in again.
func TestCheckOwnGroup(t *testing.T) {
	const own = "without root the socket can only be given to a group of your own"
	tests := []struct {
		name   string
		gid    int
		euid   int
		egid   int
		groups []int
		listed bool
		want   string // "": accepted
	}{
		{"root, any group", 4242, 0, 0, []int{0}, false, ""},
		{"effective group", 1000, 1000, 1000, nil, false, ""},
		{"supplementary group", 36, 1000, 1000, []int{1000, 27, 36}, false, ""},
		{"not one", 4242, 1000, 1000, []int{1000, 27}, false, "--group G: " + own + ", and group 4242 is not one of this user's (uid 1000): 1000"},
		{"not one, listed", 4242, 1000, 1000, []int{1000}, true, "--group G: " + own + ", and this login (uid 1000) has not got group 4242 yet, though the user is in it now: log in again, or run smolvmm net as root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOwnGroup("G", tt.gid, tt.euid, tt.egid, tt.groups, tt.listed)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("%v, want it accepted", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || exitCode(err) != 2):
				t.Errorf("%v, want status 2 and %q", err, tt.want)
			}
		})
	}
}

// TestNetGroupNotOwn: smolvmm net --group of a group its user is not in,
// not as root, is refused at once, status 2; it started, then failed at
// the socket's lchown, status 1 ("operation not permitted").
func TestNetGroupNotOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the network as another user")
	}
	const uid, gid = 61237, 65534 // no one's; nogroup
	dir, exe, tmp := binForOthers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "net", "--socket", filepath.Join(tmp, "g.sock"), "--group", "4242")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	want := "--group 4242: without root the socket can only be given to a group of your own, and group 4242 is not one of this user's (uid 61237): 65534"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), want) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("net --group 4242 as uid %d: %v, output %q; want status 2 and one line with %q", uid, err, out, want)
	}
	if _, err := os.Lstat(filepath.Join(tmp, "g.sock")); err == nil {
		t.Errorf("the socket was made")
	}
}

// TestLookupGroupRange: --group's number is bounded as run's --gid is,
// status 2, before any check of whose group it is. 4294967296 and
// 4294967295 gave the socket root's group (lchown cuts to 32 bits;
// 4294967295 is "unchanged"), 99999999999 gid 1215752191, and -1 was
// refused as root's group.
func TestLookupGroupRange(t *testing.T) {
	tests := []struct{ g, want string }{
		{"4294967295", "--group 4294967295: ids go up to 4294967294"},
		{"4294967296", "--group 4294967296: ids go up to 4294967294"},
		{"99999999999", "--group 99999999999: ids go up to 4294967294"},
		{"99999999999999999999", "--group 99999999999999999999: ids go up to 4294967294"},
		{"-1", "--group -1: ids are not negative; give a group name, or a group id between 1 and 4294967294"},
		{"-99999999999999999999", "--group -99999999999999999999: ids are not negative"},
		{"0", "--group 0: give the group of the VMs' users, not root's"},
	}
	for _, tt := range tests {
		t.Run(tt.g, func(t *testing.T) {
			gid, err := lookupGroup(tt.g)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || exitCode(err) != 2 {
				t.Errorf("lookupGroup(%q) = %d, %v; want status 2 and %q", tt.g, gid, err, tt.want)
			}
		})
	}
}
