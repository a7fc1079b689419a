//go:build linux && amd64

package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropChild is TestDropPrivilegesEveryThread's process: threads blocked
// in system calls, as a running VMM has, then DropPrivileges to nobody's
// ids; it prints each thread's capability sets (CapInh, CapPrm, CapEff,
// CapBnd, CapAmb). Mode "inheritable" first gives every thread
// CAP_NET_ADMIN as an inheritable and ambient capability. Mode "partial" first
// drops capabilities 0 to 9 from the bounding set, as a container's
// runtime does, so that those are not in it when DropPrivileges reads it.
func dropChild(mode string) int {
	var ask Credentials
	if _, err := fmt.Sscanf(mode, "ids:%d:%d", &ask.UID, &ask.GID); err == nil {
		// TestDropPrivilegesOutOfRange: refused, or the ids it left.
		if err := DropPrivileges(ask); err != nil {
			fmt.Println("refused:", err)
			return 0
		}
		ru, eu, su := getresid(unix.Getresuid)
		rg, eg, sg := getresid(unix.Getresgid)
		fmt.Printf("dropped: uids %d %d %d gids %d %d %d\n", ru, eu, su, rg, eg, sg)
		return 0
	}
	blockThreads(6)
	if mode == "inheritable" || mode == "inheritable-this-thread" {
		// As setpriv --inh-caps +net_admin --ambient-caps +net_admin
		// starts a process: DropPrivileges refused to go on with
		// "capabilities 0x1000 are left". A cgo build cannot give
		// every thread the sets: the calling thread gets them, and
		// drops them.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			fmt.Fprintln(os.Stderr, "capget:", err)
			return 3
		}
		data[0].Inheritable |= 1 << unix.CAP_NET_ADMIN
		syscall6 := syscall.AllThreadsSyscall6
		if mode == "inheritable-this-thread" {
			syscall6 = syscall.RawSyscall6
		}
		if _, _, errno := syscall6(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0, 0, 0, 0); errno != 0 {
			fmt.Fprintln(os.Stderr, "capset:", errno)
			return 3
		}
		if _, _, errno := syscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_NET_ADMIN, 0, 0, 0); errno != 0 {
			fmt.Fprintln(os.Stderr, "ambient:", errno)
			return 3
		}
	}
	if mode == "partial" {
		for c := uintptr(0); c < 10; c++ {
			if _, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0); errno != 0 {
				fmt.Fprintln(os.Stderr, "drop", c, errno)
				return 3
			}
		}
	}
	if err := DropPrivileges(Credentials{UID: 65534, GID: 65534}); err != nil {
		fmt.Fprintln(os.Stderr, "DropPrivileges:", err)
		return 3
	}
	if mode == "no-setpcap" {
		return printThreadStatus("Cap", "NoNewPrivs")
	}
	return printThreadCaps()
}

// capsChild is TestDropCapabilities's process, started as an ordinary
// user with ambient capabilities: threads blocked in system calls, then
// DropCapabilities; it prints what it returned and each thread's
// capability sets. Mode "setpcap-not-effective" first takes CAP_SETPCAP
// out of every thread's effective set, as a program may, keeping it
// permitted.
func capsChild(mode string) int {
	blockThreads(6)
	if mode == "setpcap-not-effective" {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			fmt.Fprintln(os.Stderr, "capget:", err)
			return 3
		}
		data[0].Effective &^= 1 << unix.CAP_SETPCAP
		syscall3 := syscall.AllThreadsSyscall
		if linkedWithLibc { // refused whatever the sets: this thread's do
			syscall3 = syscall.RawSyscall
		}
		if _, _, errno := syscall3(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
			fmt.Fprintln(os.Stderr, "capset:", errno)
			return 3
		}
	}
	// Mode "inheritable-exec": no filter is to forbid execve.
	had, bounding, err := DropCapabilities(mode != "inheritable-exec")
	fmt.Printf("had %#x bounding %v err %v\n", had, bounding, err)
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	fmt.Printf("dumpable %d %v\n", d, err)
	return printThreadCaps()
}

// TestDropCapabilities: a process of an ordinary user started with
// capabilities (as setpriv --ambient-caps starts one) has none left on
// any thread after DropCapabilities, and an empty bounding set when it
// held CAP_SETPCAP, effective or only permitted; a VMM started so kept
// them while its guest ran (CapEff 3000 under setpriv). With effective
// or permitted ones, the process is not dumpable after: it stayed
// dumpable, and any process of its user took the descriptors its
// capabilities had opened (root's /dev/kvm, a tap) with pidfd_getfd.
// With inheritable ones alone it stays dumpable (its user's bench reads
// its smaps); without any, nothing changes.
func TestDropCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process of another user with capabilities")
	}
	full := capBounding(t)
	bin := binaryForNobody(t)
	for _, tt := range []struct {
		name     string
		caps     []uintptr
		mode     string
		had      uint64
		bounding bool
	}{
		{"none", nil, "", 0, false},
		{"net", []uintptr{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}, "", 0x3000, false},
		{"setpcap", []uintptr{unix.CAP_SETPCAP, unix.CAP_NET_ADMIN}, "", 0x1100, true},
		{"setpcap permitted", []uintptr{unix.CAP_SETPCAP, unix.CAP_NET_ADMIN}, "setpcap-not-effective", 0x1100, true},
		// As setpriv --inh-caps +net_raw (pam_cap, older Docker)
		// starts one: nothing effective or permitted. A cgo build
		// refused to run it ("capabilities 0x2000: a build linked
		// with cgo cannot drop capabilities on every thread").
		{"inheritable only", nil, "inheritable", 0x2000, false},
		// The same with no filter to forbid execve (--no-seccomp): a
		// cgo build kept them, and a program with file capabilities
		// executed would get them.
		{"inheritable only, execve allowed", nil, "inheritable-exec", 0x2000, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Env = append(os.Environ(), "SANDBOX_TEST_CAPS=x"+tt.mode)
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Credential:  &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}},
				AmbientCaps: tt.caps,
			}
			out, err := capsChildOutput(cmd, strings.HasPrefix(tt.mode, "inheritable"))
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			want := fmt.Sprintf("had %#x bounding %v err <nil>", tt.had, tt.bounding)
			if linkedWithLibc && tt.mode == "inheritable" {
				// Kept, granting nothing, rather than refused:
				// no call on every thread (KeepsInheritable).
				for _, l := range lines[1:] {
					if strings.Contains(l, "CapInh") && !strings.HasSuffix(l, " 0000000000002000") {
						t.Errorf("thread %s, want 0000000000002000 kept", l)
					}
				}
			} else if linkedWithLibc && tt.mode == "inheritable-exec" {
				want = fmt.Sprintf("had %#x bounding false err inheritable capabilities %#x, with no system call filter to forbid executing a program with file capabilities that would get them: %v", tt.had, tt.had, ErrCapsOnEveryThread)
			} else if linkedWithLibc && tt.had != 0 {
				// Refused, the capabilities kept, rather than
				// dropped on one thread of many.
				want = fmt.Sprintf("had %#x bounding false err capabilities %#x: %v", tt.had, tt.had, ErrCapsOnEveryThread)
			}
			if lines[0] != want {
				t.Errorf("DropCapabilities: %q, want %q", lines[0], want)
			}
			// Not dumpable whenever there were effective or
			// permitted capabilities, even those a cgo build
			// refused. Inheritable ones alone opened nothing: not
			// dumpable, its user's bench could not read its smaps.
			wantDumpable := "dumpable 1 <nil>"
			if tt.had != 0 && !strings.HasPrefix(tt.mode, "inheritable") {
				wantDumpable = "dumpable 0 <nil>"
			}
			if len(lines) < 2 || lines[1] != wantDumpable {
				t.Fatalf("after DropCapabilities: %q, want %q", lines[1:min(2, len(lines))], wantDumpable)
			}
			lines = append(lines[:1], lines[2:]...)
			if linkedWithLibc && tt.had != 0 {
				return
			}
			if len(lines) < 1+5*7 {
				t.Fatalf("%d lines for %d threads, want at least 7 threads:\n%s", len(lines), len(lines)/5, out)
			}
			for _, l := range lines[1:] {
				want := "0000000000000000"
				if strings.Contains(l, "CapBnd") && !tt.bounding {
					want = full
				}
				if !strings.HasSuffix(l, " "+want) {
					t.Errorf("thread %s, want %s", l, want)
				}
			}
		})
	}
}

// capsChildOutput runs cmd; with inheritable, from a thread of this
// process whose inheritable set has CAP_NET_RAW added, so that cmd, which
// leaves root for nobody, starts with that capability inheritable and
// nothing effective or permitted (CapInh 2000, CapPrm 0).
func capsChildOutput(cmd *exec.Cmd, inheritable bool) ([]byte, error) {
	if !inheritable {
		return cmd.Output()
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread, with its changed set, ends
		// with the goroutine.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- result{nil, fmt.Errorf("capget: %w", err)}
			return
		}
		data[0].Inheritable |= 1 << unix.CAP_NET_RAW
		if _, _, errno := syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
			done <- result{nil, fmt.Errorf("capset: %w", errno)}
			return
		}
		out, err := cmd.Output()
		done <- result{out, err}
	}()
	r := <-done
	return r.out, r.err
}

// capBounding is this process's bounding set as /proc shows it.
func capBounding(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

// TestDropPrivilegesEveryThread: after DropPrivileges every thread's
// bounding set is empty, and its other capability sets, threads blocked
// in system calls included, also when the bounding set it started with
// lacked some capabilities (only the ones in it are dropped), and when
// it started with inheritable and ambient capabilities (which it
// refused to drop).
func TestDropPrivilegesEveryThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if linkedWithLibc {
		t.Skip("built with cgo: no call on all threads, the bounding set is left (dropBoundingSet)")
	}
	for _, mode := range []string{"full", "partial", "inheritable"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "SANDBOX_TEST_DROP="+mode)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, err.(*exec.ExitError).Stderr)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 5*7 {
				t.Fatalf("%d lines for %d threads, want at least 7 threads:\n%s", len(lines), len(lines)/5, out)
			}
			for _, l := range lines {
				if !strings.HasSuffix(l, " 0000000000000000") {
					t.Errorf("thread %s, want none", l)
				}
			}
		})
	}
}

// TestDropPrivilegesWithoutSetpcap: root started without CAP_SETPCAP in
// its bounding set (a service's CapabilityBoundingSet=CAP_SETUID
// CAP_SETGID..., a container that drops all capabilities but a few)
// drops to nobody with no capability on any thread, keeping the bounding
// set it cannot empty, and with no_new_privs on every thread, under which
// no program executed could gain what that set allows. It failed with
// "prctl(PR_CAPBSET_DROP, 0): operation not permitted".
func TestDropPrivilegesWithoutSetpcap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv(1) from util-linux")
	}
	full, err := strconv.ParseUint(capBounding(t), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--bounding-set", "-setpcap", "--inh-caps=-all", "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SANDBOX_TEST_DROP=no-setpcap")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 6*7 {
		t.Fatalf("%d lines for %d threads, want at least 7 threads:\n%s", len(lines), len(lines)/6, out)
	}
	for _, l := range lines {
		want := " 0000000000000000"
		switch {
		case strings.Contains(l, "CapBnd"):
			want = fmt.Sprintf(" %016x", full&^(1<<unix.CAP_SETPCAP))
		case strings.Contains(l, "NoNewPrivs"):
			if linkedWithLibc { // set by the filter's TSYNC, installed after
				continue
			}
			want = " 1"
		}
		if !strings.HasSuffix(l, want) {
			t.Errorf("thread %s, want%s", l, want)
		}
	}
}

// TestKeepBoundingSet: the bounding set is kept in a cgo build, and
// whenever CAP_SETPCAP, which emptying it takes, is not effective.
func TestKeepBoundingSet(t *testing.T) {
	const setpcap = 1 << unix.CAP_SETPCAP
	for _, tt := range []struct {
		effective uint32
		cgo       bool
		kept      BoundingSetKept
	}{
		{0xffffffff, false, 0},
		{setpcap, false, 0},
		{0xffffffff &^ setpcap, false, KeptWithoutSetpcap}, // setpriv --bounding-set -setpcap
		{1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID, false, KeptWithoutSetpcap},
		{0, false, KeptWithoutSetpcap},
		{0xffffffff, true, KeptByCgo},
		{setpcap, true, KeptByCgo},
		{0, true, KeptByCgo | KeptWithoutSetpcap},
		{0xffffffff &^ setpcap, true, KeptByCgo | KeptWithoutSetpcap},
	} {
		if got := keepBoundingSet(tt.effective, tt.cgo); got != tt.kept {
			t.Errorf("keepBoundingSet(%#x, cgo %v) = %#x, want %#x", tt.effective, tt.cgo, got, tt.kept)
		}
	}
}

// TestDropPrivilegesInheritable: a process started with inheritable and
// ambient capabilities drops them with its user, in a cgo build too; it
// refused to ("capabilities 0x1000 are left after dropping to uid
// 65534"), so --user always failed under setpriv --inh-caps.
func TestDropPrivilegesInheritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SANDBOX_TEST_DROP=inheritable-this-thread")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasSuffix(l, " 0000000000000000") && (!linkedWithLibc || !strings.Contains(l, "CapBnd")) {
			t.Errorf("thread %s, want none", l)
		}
	}
}

// TestDropPrivilegesOutOfRange: ids the kernel cannot take exactly are
// refused before anything changes. gid 4294967295 is setresgid's
// "unchanged" and 4294967296 was cut to 0: both left the process in
// root's group; uid 4294967296 became root again and was only caught by
// the capabilities left.
func TestDropPrivilegesOutOfRange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	tests := []struct {
		uid, gid int
		want     string
	}{
		{65534, 1<<32 - 1, "refused: drop privileges to uid 65534, gid 4294967295: gid 4294967295 is out of range"},
		{65534, 1 << 32, "refused: drop privileges to uid 65534, gid 4294967296: gid 4294967296 is out of range"},
		{1<<32 - 1, 65534, "refused: drop privileges to uid 4294967295, gid 65534: uid 4294967295 is out of range"},
		{1 << 32, 65534, "refused: drop privileges to uid 4294967296, gid 65534: uid 4294967296 is out of range"},
		{1<<32 - 2, 1<<32 - 2, "dropped: uids 4294967294 4294967294 4294967294 gids 4294967294 4294967294 4294967294"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d:%d", tt.uid, tt.gid), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("SANDBOX_TEST_DROP=ids:%d:%d", tt.uid, tt.gid))
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), tt.want) {
				t.Errorf("%v, output %q; want %q", err, out, tt.want)
			}
		})
	}
}

// TestCheckDropped: a process that is not running as the ids asked is
// told so, naming the ids it has.
func TestCheckDropped(t *testing.T) {
	ru, eu, su := getresid(unix.Getresuid)
	err := checkDropped(Credentials{UID: 12345, GID: 12345}, false)
	if want := fmt.Sprintf("runs as uids %d %d %d", ru, eu, su); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("checkDropped as uid %d: %v; want an error saying %q", eu, err, want)
	}
}

// TestLookupUserOutOfRange: a numeric user past MaxID is refused, naming
// it; it was taken and cut to 32 bits when dropped to.
func TestLookupUserOutOfRange(t *testing.T) {
	for _, name := range []string{"4294967295", "4294967296", "18446744073709551615"} {
		cr, err := LookupUser(name)
		want := "user " + name + ": "
		if name != "18446744073709551615" { // not even an int: no such user
			want += "uid " + name + " is out of range"
		}
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("LookupUser(%s) = %+v, %v; want an error starting %q", name, cr, err, want)
		}
	}
	// In range but in no entry: its group is unknown, not 4294967294.
	if cr, err := LookupUser("4294967294"); !errors.Is(err, ErrNoPasswdEntry) {
		t.Errorf("LookupUser(4294967294) = %+v, %v; want %v", cr, err, ErrNoPasswdEntry)
	}
}

// TestLookupUserNumeric: a numeric user takes the group of its entry in
// the user database, as its name does; it took its own number as the
// gid (--user 5 ran as gid 5, Debian's tty, where games is uid 5 gid
// 60). Checked on /etc/passwd's entries whose uid and gid differ.
func TestLookupUserNumeric(t *testing.T) {
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skip(err)
	}
	seen, differ := map[string]bool{}, 0
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || seen[f[2]] {
			continue
		}
		seen[f[2]] = true // the first entry of a uid is the one found
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid == gid {
			continue
		}
		differ++
		byID, err := LookupUser(f[2])
		if err != nil || byID != (Credentials{UID: uid, GID: gid}) {
			t.Errorf("LookupUser(%s) = %+v, %v; want uid %d gid %d, %s's", f[2], byID, err, uid, gid, f[0])
		}
		if byName, err := LookupUser(f[0]); err != nil || byName != byID {
			t.Errorf("LookupUser(%s) = %+v, %v; want %+v, as LookupUser(%s)", f[0], byName, err, byID, f[2])
		}
	}
	if differ == 0 {
		t.Skip("no entry of /etc/passwd has a gid other than its uid")
	}
}

// TestCheckChrootDir: a root directory that is missing, not a directory
// or not empty is refused in a plain sentence naming it; it read "open
// DIR: no such file or directory" and "readdirent DIR: not a directory".
// So is one that another user than root owns or that its group or others
// may write (they could put in it a socket the VMM would dial as its
// network's): it was accepted.
func TestCheckChrootDir(t *testing.T) {
	// Only root has directories that pass, or that fail for more than
	// their owner; what is missing or no directory fails for anybody.
	root := os.Geteuid() == 0
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	private := filepath.Join(dir, "private")
	full := filepath.Join(dir, "full")
	file := filepath.Join(dir, "file")
	fifo := filepath.Join(dir, "fifo")
	nobodys := filepath.Join(dir, "nobodys")
	group := filepath.Join(dir, "group")
	others := filepath.Join(dir, "others")
	tmp := filepath.Join(dir, "tmp")
	usedTmp := filepath.Join(dir, "usedtmp")
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{empty, 0o755}, {private, 0o700}, {full, 0o755}, {nobodys, 0o755},
		{group, 0o775}, {others, 0o757}, {tmp, 0o777 | os.ModeSticky}, {usedTmp, 0o777 | os.ModeSticky},
	} {
		if err := os.Mkdir(d.path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	if root {
		if err := os.Chown(nobodys, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{file, filepath.Join(full, "x"), filepath.Join(usedTmp, "x")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		risk   = " could put files in it for the VMM to use, such as a socket in place of its network's"
		advice = "; give a new empty directory owned by root that only root may write"
	)
	for _, tt := range []struct {
		dir, want string
		root      bool // needs root: the directory is root's, or given to another user
	}{
		{empty, "", true},
		{private, "", true},
		{filepath.Join(dir, "none"), filepath.Join(dir, "none") + " does not exist" + advice, false},
		{file, file + " is a regular file, not a directory" + advice, false},
		{fifo, fifo + " is a FIFO, not a directory" + advice, false},
		// Emptiness is checked first: a directory in use, such as
		// /tmp, is refused as that, with no hint to change its owner
		// or mode (chmod go-w /tmp was advised).
		{full, full + " is not empty (it holds x)" + advice, false},
		{usedTmp, usedTmp + " is not empty (it holds x)" + advice, false},
		// Then the owner: another user's directory fails as not
		// root's, whatever its mode.
		{nobodys, nobodys + " is owned by uid 65534" + ownerName(65534) + ", not root: its owner" + risk + advice, true},
		{group, group + " is writable by its group (mode 0775): they" + risk + advice, true},
		{others, others + " is writable by others (mode 0757): they" + risk + advice, true},
		{tmp, tmp + " is writable by its group and others (mode 1777): they" + risk + advice, true},
	} {
		if tt.root && !root {
			// Then the directories are this user's, and fail as not
			// root's.
			want := fmt.Sprintf("%s is owned by uid %d", tt.dir, os.Geteuid())
			if err := CheckChrootDir(tt.dir); !strings.HasPrefix(fmt.Sprint(err), want) {
				t.Errorf("CheckChrootDir(%s) = %v, want %q...", tt.dir, err, want)
			}
			continue
		}
		err := CheckChrootDir(tt.dir)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("CheckChrootDir(%s) = %v, want %q", tt.dir, err, tt.want)
		}
		var ce *ChrootDirError
		if tt.want != "" && (!errors.As(err, &ce) || ce.Dir != tt.dir) {
			t.Errorf("CheckChrootDir(%s) = %#v, want a *ChrootDirError naming it", tt.dir, err)
		}
	}
}

// ownerName is " (NAME)" for a user the system knows, else "".
func ownerName(uid int) string {
	if u, err := user.LookupId(fmt.Sprint(uid)); err == nil {
		return " (" + u.Username + ")"
	}
	return ""
}

// blockThreads starts n goroutines, each locked to a thread of its own
// and blocked in a system call for good, as a VMM's vCPU and I/O threads
// are: what a call on every thread must reach.
func blockThreads(n int) {
	for range n {
		locked := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			var p [2]int
			if err := syscall.Pipe(p[:]); err != nil {
				panic(err)
			}
			close(locked)
			var b [1]byte
			syscall.Read(p[0], b[:]) // blocks for good
		}()
		<-locked
	}
}

// printThreadCaps prints each thread's capability sets ("TID CapInh:
// HEX", ...) and returns a child's status: 0, or 3 when a thread's
// status cannot be read.
func printThreadCaps() int { return printThreadStatus("Cap") }

// printThreadStatus prints each thread's /proc status lines that start
// with one of prefixes, as printThreadCaps does.
func printThreadStatus(prefixes ...string) int {
	paths, _ := filepath.Glob("/proc/self/task/*/status")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		for _, line := range strings.Split(string(b), "\n") {
			if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(line, p) }) {
				fmt.Printf("%s %s\n", filepath.Base(filepath.Dir(p)), strings.Join(strings.Fields(line), " "))
			}
		}
	}
	return 0
}

// binaryForNobody copies the test binary where nobody may run it (t's
// own temporary directory's parent is root's alone), removed at the end.
func binaryForNobody(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandbox-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "sandbox.test")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyExecutable(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestLookupUserCause: "no such user" is said only when the user
// database has no such name; a database that cannot be read is reported
// with its error, which was dropped for "no such user".
func TestLookupUserCause(t *testing.T) {
	unreadable := &fs.PathError{Op: "open", Path: "/etc/passwd", Err: fs.ErrPermission}
	tests := []struct {
		name   string
		lookup func(string) (*user.User, error)
		msg    string
		is     error
	}{
		{"no such name", func(n string) (*user.User, error) { return nil, user.UnknownUserError(n) }, "user vmm: no such user", nil},
		{"database unreadable", func(string) (*user.User, error) { return nil, unreadable }, "user vmm: reading the user database: open /etc/passwd: permission denied", fs.ErrPermission},
	}
	defer func(l func(string) (*user.User, error)) { userLookup = l }(userLookup)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userLookup = tt.lookup
			_, err := LookupUser("vmm")
			if err == nil || err.Error() != tt.msg || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("LookupUser = %v, want %q wrapping %v", err, tt.msg, tt.is)
			}
		})
	}
}
