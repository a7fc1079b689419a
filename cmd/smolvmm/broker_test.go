package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestBrokerVMMNamesNothing: a VMM writing snapshots, taken over once
// set up (the test hook, on the vCPU thread), can neither remove nor
// rename a file by the descriptor its snapshot's directory had (an
// absolute name, or ".." out of the directory, as the old filter let
// through), nor open a Unix socket: the filter stops it (status 148, the
// call named) and the file stays. With --no-seccomp the same hooks go
// through, which shows they run. A VMM on a shared network, which dials
// its hub itself, may connect to another Unix socket its user may reach
// (docs/containment.md): the test says so, so that a change to it
// changes the guide too.
func TestBrokerVMMNamesNothing(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	tests := []struct {
		name     string
		hook     string // %V: the victim's path, %D: the snapshot dir's parent
		shared   bool   // on a shared network instead of --snapshot
		chroot   bool   // with --chroot, an empty directory
		noFilter bool
		reaches  bool // the hook goes through (with the filter too)
		want     string
	}{
		{name: "unlinkat absolute", hook: "unlinkat:%V", want: "forbidden unlinkat (system call 263)"},
		{name: "unlinkat dotdot", hook: "unlinkat:../victim", want: "forbidden unlinkat (system call 263)"},
		// The directory's descriptor was opened outside the chroot.
		{name: "unlinkat dotdot under chroot", hook: "unlinkat:../victim", chroot: true, want: "forbidden unlinkat (system call 263)"},
		{name: "renameat dotdot", hook: "renameat:../victim:../moved", want: "forbidden renameat (system call 264)"},
		{name: "unlinkat without filter", hook: "unlinkat:%V", noFilter: true, reaches: true, want: "smolvmm-test: unlinkat"},
		{name: "connect", hook: "connect:%S", want: "forbidden socket (system call 41)"},
		{name: "connect without filter", hook: "connect:%S", noFilter: true, reaches: true, want: "smolvmm-test: connect"},
		{name: "connect on a shared network", hook: "connect:%S", shared: true, reaches: true, want: "smolvmm-test: connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := testsock.Dir(t)
			victim := filepath.Join(top, "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			snapDir := filepath.Join(top, "snaps")
			if err := os.Mkdir(snapDir, 0o755); err != nil {
				t.Fatal(err)
			}
			// A Unix socket the VMM has no business with (as a
			// container runtime's).
			other := filepath.Join(top, "other.sock")
			ln, err := net.Listen("unix", other)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			args := []string{"run", "-k", counter, "-m", "16", "-a", "n=2 at=0"}
			if tt.shared {
				hub := filepath.Join(top, "hub.sock")
				startNetDaemon(t, hub)
				args = append(args, "--net", "user:"+hub)
			} else {
				args = append(args, "--net", "none", "--snapshot", filepath.Join(snapDir, "s.snap"))
			}
			if tt.noFilter {
				args = append(args, "--no-seccomp")
			}
			if tt.chroot {
				empty := filepath.Join(top, "empty")
				if err := os.Mkdir(empty, 0o755); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--chroot", empty)
			}
			hook := strings.NewReplacer("%V", victim, "%S", other).Replace(tt.hook)
			cmd := exec.Command(smolvmmBin(t), args...)
			cmd.Dir = snapDir
			cmd.Env = append(os.Environ(), testHookEnv+"="+hook)
			// Not an *os.File: Run waits for the pipe's end, which the
			// broker holds until it has removed the temporaries and
			// ended.
			var stderr lockedBuffer // contain_test.go
			cmd.Stderr = &stderr
			err = cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			wantStatus := sandbox.ExitStatus
			if tt.reaches {
				wantStatus = 1 // --snapshot: never ready; shared: ends as the guest does
				if tt.shared {
					wantStatus = status
				}
			}
			if status != wantStatus || !strings.Contains(out, tt.want) {
				t.Fatalf("status %d, stderr %q; want status %d and %q", status, out, wantStatus, tt.want)
			}
			if tt.reaches {
				if strings.Contains(out, ": <nil>") {
					return // the hook ran, and did it
				}
				t.Fatalf("the hook failed: %q", out)
			}
			if got, err := os.ReadFile(victim); err != nil || string(got) != "precious" {
				t.Fatalf("%s: %q, %v; want it untouched", victim, got, err)
			}
			if !tt.shared {
				if got := dirNames(t, snapDir); len(got) != 0 {
					t.Fatalf("the stopped VMM's broker left %q", got)
				}
			}
		})
	}
}

// TestBrokerFullDisk: a snapshot that fills its file system (a small
// tmpfs: the counter guest's snapshot holds 48 KiB of data, the rest
// holes) fails with the system's error, and leaves the file as it was
// and no temporary beside it, with and without the filter (the broker
// removes the temporaries either way).
func TestBrokerFullDisk(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs")
	}
	counter := guests.ForTest(t, "counter")
	for _, tt := range []struct {
		name string
		old  bool // a previous snapshot file is there
		args []string
	}{
		{"new file", false, nil},
		{"over a file", true, nil},
		{"over a file without filter", true, []string{"--no-seccomp"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16k"); err != nil {
				t.Skipf("mount tmpfs: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
			snap := filepath.Join(dir, "s.snap")
			want := []string{}
			if tt.old {
				if err := os.WriteFile(snap, []byte(oldSnap), 0o644); err != nil {
					t.Fatal(err)
				}
				want = []string{"s.snap"}
			}
			args := append([]string{"run", "-k", counter, "-m", "16", "-a", "n=3 at=0", "--net", "none",
				"--ready", "count 1", "--snapshot", snap, "--snapshot-exit"}, tt.args...)
			_, stderr, status := runCLI(t, args...)
			if status != 1 || !strings.Contains(stderr, syscall.ENOSPC.Error()) {
				t.Fatalf("status %d, stderr %q; want 1 and %q", status, stderr, syscall.ENOSPC.Error())
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Fatalf("left %q; want %q", got, want)
			}
			if tt.old {
				if got := string(mustRead(t, snap)); got != oldSnap {
					t.Fatalf("%s holds %q; want it as it was", snap, got)
				}
			}
		})
	}
}

// TestCLISnapshotSymlink: --snapshot through a symlink in a sticky
// world-writable directory replaces the file it names when the link is
// the user's own, refuses (naming the link and its owner) one another
// user planted there, leaving the file it names alone, and refuses a
// link to nothing.
func TestCLISnapshotSymlink(t *testing.T) {
	if !kvmUsable() || os.Geteuid() != 0 {
		t.Skip("needs /dev/kvm and root: the planted link is another user's")
	}
	counter := guests.ForTest(t, "counter")
	for _, tt := range []struct {
		name     string
		owner    int
		dangling bool
		want     string // "" : written
	}{
		{"own link", 0, false, ""},
		{"planted link", 4242, false, "owned by uid 4242, in "},
		{"dangling link", 0, true, "symlink to a file that does not exist"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			victim := filepath.Join(top, "victim")
			if !tt.dangling {
				if err := os.WriteFile(victim, []byte(oldSnap), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tmp := filepath.Join(top, "tmp")
			if err := os.Mkdir(tmp, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(tmp, "s.snap")
			if err := os.Symlink(victim, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, tt.owner, tt.owner); err != nil {
				t.Fatal(err)
			}
			_, stderr, status := runCLI(t, "run", "-k", counter, "-m", "16", "-a", "n=3 at=0", "--net", "none",
				"--ready", "count 1", "--snapshot", link, "--snapshot-exit")
			if tt.want != "" {
				if status != 1 || !strings.Contains(stderr, "--snapshot "+link+": ") || !strings.Contains(stderr, tt.want) {
					t.Fatalf("status %d, stderr %q; want 1 and %q", status, stderr, tt.want)
				}
				if !tt.dangling {
					if got := string(mustRead(t, victim)); got != oldSnap {
						t.Fatalf("%s holds %q", victim, got)
					}
				} else if _, err := os.Lstat(victim); err == nil {
					t.Fatalf("%s was created", victim)
				}
				return
			}
			if status != 0 {
				t.Fatalf("status %d, stderr %q", status, stderr)
			}
			f, err := snapshot.Open(victim)
			if err != nil {
				t.Fatalf("%s: %v", victim, err)
			}
			f.Close()
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s is no longer the link: %v", link, err)
			}
		})
	}
}

// TestBrokerContained: the broker of a VM started as root with --uid,
// --chroot and --snapshot runs as that user with no capabilities, its
// bounding set empty as the VMM's, under a seccomp filter of its own
// with no_new_privs, outside the chroot (its root the host's, where the
// snapshot's directory is), and holds no descriptor but its standard
// ones, its socket and the directory. Neither the broker nor the VMM
// lets another process of that user take a descriptor (pidfd_getfd of
// stderr, which may be a file only root may write): a broker that took
// its user at exec stayed dumpable with its bounding set full, and any
// process of the user could.
func TestBrokerContained(t *testing.T) {
	if !kvmUsable() || os.Geteuid() != 0 {
		t.Skip("needs /dev/kvm and root")
	}
	// A uid and gid of the VM's own, no one's: snapshots are refused for
	// the host's nobody (checkSnapshotFlags).
	user := sandbox.Credentials{UID: 61241, GID: 61241}
	top := t.TempDir()
	empty := filepath.Join(top, "empty")
	snaps := filepath.Join(top, "snaps")
	for _, d := range []string{empty, snaps} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(snaps, user.UID, user.GID); err != nil {
		t.Fatal(err)
	}
	cmd, stderr := runningVM(t, nil, "--uid", strconv.Itoa(user.UID), "--gid", strconv.Itoa(user.GID), "--chroot", empty, "--snapshot", filepath.Join(snaps, "s.snap"))
	children := childrenOf(cmd.Process.Pid)
	if len(children) != 1 {
		t.Fatalf("the VMM has children %v; want its broker alone\nstderr:\n%s", children, stderr)
	}
	broker := children[0]
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", broker)); !strings.HasPrefix(string(cmdline), "smolvmm-broker\x00s.snap\x00") {
		t.Fatalf("child %d runs %q; want the broker", broker, cmdline)
	}
	// The broker starts beside the VM and installs its filter before
	// it reads a request: wait for it.
	deadline := time.Now().Add(20 * time.Second)
	for procStatus(t, broker)[0]["Seccomp"] != "2" {
		if time.Now().After(deadline) {
			t.Fatalf("the broker installed no filter within 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkFiltered(t, broker) // contain_test.go
	want := fmt.Sprintf("%d\t%d\t%d\t%d", user.UID, user.UID, user.UID, user.UID)
	for _, st := range procStatus(t, broker) {
		if st["Uid"] != want || st["Groups"] != "" {
			t.Errorf("%s: Uid %q, Groups %q; want %q, no groups", st["path"], st["Uid"], st["Groups"], want)
		}
		checkNoCaps(t, st, "CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd")
	}
	for _, p := range []struct {
		name string
		pid  int
	}{{"broker", broker}, {"VMM", cmd.Process.Pid}} {
		if errno := takeFD(t, user, p.pid, 2); errno == 0 {
			t.Errorf("a process of uid %d took the %s's stderr (pidfd_getfd); want %v", user.UID, p.name, unix.EPERM)
		} else if errno != unix.EPERM {
			t.Errorf("a process of uid %d taking the %s's stderr: pidfd_getfd: %v; want %v", user.UID, p.name, errno, unix.EPERM)
		}
	}
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", broker)); err != nil || root != "/" {
		t.Errorf("the broker's root: %q, %v; want /", root, err)
	}
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", cmd.Process.Pid)); err != nil || root != empty {
		t.Errorf("the VMM's root: %q, %v; want %s", root, err, empty)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", broker))
	if err != nil {
		t.Fatal(err)
	}
	var names, held []string
	for _, fd := range fds {
		to, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", broker, fd.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed since the listing: not held
		}
		if n, _ := strconv.Atoi(fd.Name()); n > 4 && (strings.HasPrefix(to, "anon_inode:") || strings.HasPrefix(to, "/sys/fs/cgroup/")) {
			continue // the Go runtime's: its poller, its CPU limit's files
		}
		names = append(names, fd.Name())
		held = append(held, fd.Name()+" -> "+to)
	}
	if !slices.Equal(names, []string{"0", "1", "2", "3", "4"}) {
		t.Errorf("the broker holds descriptors %q beside its runtime's; want 0 to 4", held)
	}
	if dir, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/4", broker)); err != nil || dir != snaps {
		t.Errorf("the broker's descriptor 4: %q, %v; want %s", dir, err, snaps)
	}
}

// takeFD has a process running as cr (TestMain's helper, which drops to
// it) take descriptor fd of process pid (pidfd_getfd), and returns its
// errno: 0 when it could.
func takeFD(t *testing.T, cr sandbox.Credentials, pid, fd int) syscall.Errno {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d:%d:%d", takeFDEnv, cr.UID, cr.GID, pid, fd))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("take descriptor %d of %d as uid %d: %v (%s)", fd, pid, cr.UID, err, exitStderr(err))
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("take descriptor %d of %d: printed %q", fd, pid, out)
	}
	return syscall.Errno(n)
}

// exitStderr is the stderr an *exec.ExitError kept, or "".
func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// childrenOf returns the processes pid started that still run.
func childrenOf(pid int) []int {
	var children []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				children = append(children, c)
			}
		}
	}
	return children
}

// TestBrokerForSnapshotOnly: a VM on a shared network has no broker (it
// dials its hub itself: a broker per VM would cost more memory than the
// VM); one with --snapshot has one, which with a shared network too is
// given the snapshot's names alone.
func TestBrokerForSnapshotOnly(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	hub := filepath.Join(testsock.Dir(t), "hub.sock")
	startNetDaemon(t, hub)
	for _, tt := range []struct {
		name         string
		shared, snap bool
	}{
		{"shared network", true, false},
		{"snapshot", false, true},
		{"both", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.shared {
				args = append(args, "--net", "user:"+hub)
			}
			if tt.snap {
				args = append(args, "--snapshot", filepath.Join(t.TempDir(), "s.snap"))
			}
			cmd, stderr := runningVM(t, nil, args...)
			children := childrenOf(cmd.Process.Pid)
			if !tt.snap {
				if len(children) != 0 {
					t.Fatalf("the VMM has children %v; want none\nstderr:\n%s", children, stderr)
				}
				return
			}
			if len(children) != 1 {
				t.Fatalf("the VMM has children %v; want its broker alone\nstderr:\n%s", children, stderr)
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", children[0]))
			got := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
			if len(got) != 7 || got[0] != "smolvmm-broker" || got[1] != "s.snap" {
				t.Fatalf("the broker's command line %q; want smolvmm-broker, s.snap, its two temporaries and the three's identities", got)
			}
		})
	}
}

// TestBrokerRefusesPaths: the broker takes only names in the snapshot's
// directory from its command line, never a path out of it, and only
// UID:GID as the user to drop to. (Only
// refusals here: brokerMain with valid arguments would filter the test.)
func TestBrokerRefusesPaths(t *testing.T) {
	ids := []string{"-", "2049:12", "2049:13"}
	for _, args := range [][]string{
		append([]string{"smolvmm-broker", "../s.snap", ".a.tmp", ".b.tmp"}, ids...),
		append([]string{"smolvmm-broker", "s.snap", "/etc/passwd", ".b.tmp"}, ids...),
		append([]string{"smolvmm-broker", "s.snap", ".a.tmp", ".."}, ids...),
		append([]string{"smolvmm-broker", "s.snap", ".a.tmp", ""}, ids...),
		append([]string{"smolvmm-broker", "", ".a.tmp", ".b.tmp"}, ids...),
		append([]string{"smolvmm-broker", "", "", ""}, ids...),
		append([]string{"smolvmm-broker", "s.snap", ".a.tmp", ".b.tmp", "/run/hub.sock"}, ids...),
		{"smolvmm-broker", "s.snap", ".a.tmp", ".b.tmp"},
		{"smolvmm-broker", "s.snap"},
		// The identities: DEV:INO, "-" for no file only for the file.
		{"smolvmm-broker", "s.snap", ".a.tmp", ".b.tmp", "-", "-", "2049:13"},
		{"smolvmm-broker", "s.snap", ".a.tmp", ".b.tmp", "-", "2049", "2049:13"},
		{"smolvmm-broker", "s.snap", ".a.tmp", ".b.tmp", "x:1", "2049:12", "2049:13"},
		{"smolvmm-broker", "s.snap", ".a.tmp", ".b.tmp", "-", "2049:0", "2049:13"},
	} {
		if got := brokerMain(args); got != 2 {
			t.Errorf("brokerMain(%q) = %d; want 2, refused", args, got)
		}
	}
	// A user to drop to that is not UID:GID is refused before the drop.
	for _, u := range []string{"nobody", "65534", "65534:", ":65534", "x:1"} {
		t.Setenv(brokerUserEnv, u)
		if got := brokerMain(append([]string{"smolvmm-broker", "s.snap", ".a.tmp", ".b.tmp"}, ids...)); got != 2 {
			t.Errorf("%s=%q: brokerMain = %d; want 2, refused", brokerUserEnv, u, got)
		}
	}
}

// TestSharedNetAbstractSocket: a VMM on a shared network without --jail,
// taken over once set up (the test hook), connects to an abstract Unix
// socket of the host's (here root's), whatever --user and --chroot say:
// abstract sockets have no permission check and no place in a file
// system. With --jail, in a network namespace of its own, it cannot. -v
// says so without --jail; and run --help and the documentation (README.md,
// docs/containment.md) name abstract
// sockets and --jail as the bound, where they said --user bounded the
// reach ("and nothing else", "only to those open to that user").
func TestSharedNetAbstractSocket(t *testing.T) {
	if !kvmUsable() || os.Geteuid() != 0 {
		t.Skip("needs /dev/kvm and root (--user, --chroot, --jail)")
	}
	counter := guests.ForTest(t, "counter")
	top := testsock.Dir(t)
	hub := filepath.Join(top, "hub.sock")
	startNetDaemon(t, hub)
	if err := os.Chmod(hub, 0o666); err != nil { // nobody dials it again
		t.Fatal(err)
	}
	empty := filepath.Join(top, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	abstract := fmt.Sprintf("@smolvmm-test-%d", os.Getpid())
	ln, err := net.Listen("unix", abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const note = "any abstract Unix socket of the host's network namespace"
	for _, tt := range []struct {
		name string
		jail bool
		want string
	}{
		{"unjailed", false, "smolvmm-test: connect " + abstract + ": <nil>"},
		{"jailed", true, "smolvmm-test: connect " + abstract + ": " + syscall.ECONNREFUSED.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"run", "-k", counter, "-m", "16", "-a", "n=2 at=0", "-v",
				"--net", "user:" + hub, "--user", "nobody", "--chroot", empty}
			if tt.jail {
				args = append(args, "--jail")
			}
			cmd := exec.Command(smolvmmBin(t), args...)
			cmd.Env = append(os.Environ(), testHookEnv+"=connect:"+abstract)
			out, err := cmd.CombinedOutput()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte(tt.want)) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, out)
			}
			if got := bytes.Contains(out, []byte(note)); got != !tt.jail {
				t.Errorf("-v notes the abstract sockets: %v, want %v:\n%s", got, !tt.jail, out)
			}
		})
	}
	help := strings.Join(strings.Fields(runCommand().Description), " ")
	docsText := strings.Join(strings.Fields(docs(t)), " ")
	for _, tt := range []struct {
		name, text, said string
	}{
		{"run --help", help, "its console and nothing else"},
		{"README.md and docs/", docsText, "one run as a user of its own only to those open to that user"},
		{"sandbox.Filter.UnixSockets", strings.Join(strings.Fields(string(mustRead(t, "../../sandbox/sandbox.go"))), " "), "best one that runs as a user of its own"},
	} {
		if strings.Contains(tt.text, tt.said) {
			t.Errorf("%s still says %q: abstract Unix sockets are reachable whatever the user", tt.name, tt.said)
		}
		names := strings.Contains(tt.text, "abstract")
		bound := strings.Contains(tt.text, "--jail") || strings.Contains(tt.text, "network namespace")
		if !names || !bound {
			t.Errorf("%s names neither abstract Unix sockets nor --jail as what bounds them", tt.name)
		}
	}
}
