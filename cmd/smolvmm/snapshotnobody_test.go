package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLISnapshotNobodyRefused: a root run with --user nobody (or --uid
// 65534) and --snapshot made the snapshots nobody's, which every other
// process running as nobody could then read, guest memory and all. The
// combination is refused (status 2) before anything boots, is fetched or
// is created in the snapshot's directory, for run and up, with --restore
// too; a VM dropping to a uid of its own still gets its snapshots as
// that uid's. A restore alone as nobody stays allowed
// (TestCLIRestoreSnapshotOwner's "--user's" and "--uid's").
func TestCLISnapshotNobodyRefused(t *testing.T) {
	if !kvmUsable() || os.Geteuid() != 0 {
		t.Skip("needs /dev/kvm and root")
	}
	counter := guests.ForTest(t, "counter")
	nobody := nobodyUser(t) // contain_test.go
	const own = 61241       // no one's
	boot := []string{"run", "-k", counter, "-m", "16", "-a", "n=120 at=100", "--net", "none", "--snapshot-exit"}
	up := []string{"up", "--cache", t.TempDir(), "--mirror", "http://127.0.0.1:1/pub", "-i", filepath.Join(t.TempDir(), "r.img")}
	restore := []string{"run", "--restore", filepath.Join(t.TempDir(), "none.snap"), "--net", "none"}
	tests := []struct {
		name     string
		cmd      []string
		drop     []string
		dirOwner int
		refused  int // the uid the refusal names; -1: the snapshot is written
	}{
		{"run --user nobody", boot, []string{"--user", "nobody"}, nobody.UID, nobody.UID},
		{"run --uid 65534", boot, []string{"--uid", "65534", "--gid", "65534"}, 65534, 65534},
		{"up --user nobody", up, []string{"--user", "nobody"}, nobody.UID, nobody.UID},
		{"run --restore --user nobody", restore, []string{"--user", "nobody"}, nobody.UID, nobody.UID},
		{"a uid of its own", boot, []string{"--uid", strconv.Itoa(own), "--gid", strconv.Itoa(own)}, own, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, tt.dirOwner, tt.dirOwner); err != nil {
				t.Fatal(err)
			}
			snap := filepath.Join(dir, "vm.snap")
			args := append(append(append([]string{}, tt.cmd...), tt.drop...), "--snapshot", snap)
			if tt.cmd[0] == "up" {
				args = append(args, "rescue")
			}
			_, stderr, status := runCLI(t, args...)
			if tt.refused >= 0 {
				want := "smolvmm " + tt.cmd[0] + ": --snapshot " + snap + ": the VM would run as uid " + strconv.Itoa(tt.refused) +
					", the host's nobody, and its snapshots would be that user's, readable by every other process running as nobody (the guest's memory is in them); " +
					"give the VM an account of its own: --user NAME of a dedicated account, or --uid N --gid N of ids no one else uses\n"
				if status != 2 || stderr != want {
					t.Errorf("status %d, stderr %q; want 2, %q", status, stderr, want)
				}
				if names := dirNames(t, dir); len(names) != 0 { // snapshotsafe_test.go
					t.Errorf("left in the directory: %q; want nothing", names)
				}
				return
			}
			if status != 0 {
				t.Fatalf("status %d, stderr:\n%s", status, stderr)
			}
			fi, err := os.Stat(snap)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != own || int(st.Gid) != own || fi.Mode() != 0o600 {
				t.Errorf("%s: owner %d:%d, mode %v; want %d:%d, -rw-------", snap, st.Uid, st.Gid, fi.Mode(), own, own)
			}
			if names := dirNames(t, dir); len(names) != 1 || !strings.HasSuffix(snap, "/"+names[0]) {
				t.Errorf("left in the directory: %q; want only vm.snap", names)
			}
		})
	}
}

// TestAllowSnapshotUserRefusesNobody: allowSnapshotUser, which run's
// setup and up's preflight call on the opened target, refuses the host's
// nobody too (status 2), whichever way it is named, for a caller that did
// not ask checkSnapshotFlags first, and leaves nothing beside the file
// once the target is closed; a uid of the VM's own is allowed.
func TestAllowSnapshotUserRefusesNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give the snapshot's temporaries to another user")
	}
	nobody := nobodyUser(t) // contain_test.go
	overflow := 65534
	if b, err := os.ReadFile("/proc/sys/kernel/overflowuid"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			overflow = v
		}
	}
	tests := []struct {
		name    string
		drop    []string
		uid     int
		refused bool
	}{
		{"--user nobody", []string{"--user", "nobody"}, nobody.UID, true},
		{"--uid 65534", []string{"--uid", "65534", "--gid", "65534"}, 65534, true},
		{"the overflow uid", []string{"--uid", strconv.Itoa(overflow), "--gid", strconv.Itoa(overflow)}, overflow, true},
		{"a uid of its own", []string{"--uid", "61241", "--gid", "61241"}, 61241, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, tt.uid, tt.uid); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "vm.snap")
			var err error
			app := &cli.App{
				Name:  "smolvmm",
				Flags: containFlags(),
				Action: func(c *cli.Context) error {
					tg, oerr := snapshot.OpenTarget(path)
					if oerr != nil {
						return oerr
					}
					defer tg.Close()
					err = allowSnapshotUser(c, path, tg)
					return nil
				},
			}
			if rerr := app.Run(append([]string{"smolvmm"}, tt.drop...)); rerr != nil {
				t.Fatal(rerr)
			}
			want := "--snapshot " + path + ": the VM would run as uid " + strconv.Itoa(tt.uid) + ", the host's nobody, and its snapshots would be that user's"
			switch {
			case !tt.refused && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused && (err == nil || !strings.HasPrefix(err.Error(), want) || exitCode(err) != 2):
				t.Errorf("err = %v (status %d); want status 2, %q...", err, exitCode(err), want)
			}
			if names := dirNames(t, dir); len(names) != 0 { // snapshotsafe_test.go
				t.Errorf("left in the directory: %q; want nothing", names)
			}
		})
	}
}
