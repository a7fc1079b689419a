package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/sandbox"
)

// TestForbiddenCallStopsVMM: code that runs on the vCPU thread once the
// guest prints (the test hook standing for a device model the guest took
// over) and attempts a call outside the allow-list ends the VMM with
// sandbox.ExitStatus and one line naming the call; with --no-seccomp the
// same call goes through.
func TestForbiddenCallStopsVMM(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bin := smolvmmBin(t)
	tests := []struct {
		hook   string
		args   []string
		status int
		want   string
	}{
		{"open:/etc/passwd", nil, sandbox.ExitStatus, "smolvmm: seccomp: the VMM attempted the forbidden openat (system call 257) and was stopped"},
		{"exec:/bin/true", nil, sandbox.ExitStatus, "smolvmm: seccomp: the VMM attempted the forbidden execve (system call 59) and was stopped"},
		{"open:/etc/passwd", []string{"--net", "user"}, sandbox.ExitStatus, "forbidden openat (system call 257)"},
		{"open:/etc/passwd", []string{"--no-seccomp"}, 0, "smolvmm-test: opened /etc/passwd"},
		// The user network's sockets are TCP and UDP with their usual
		// options: a raw socket and iptables' options were allowed.
		{"raw-socket", []string{"--net", "user"}, sandbox.ExitStatus, "forbidden socket (system call 41)"},
		{"iptables", []string{"--net", "user"}, sandbox.ExitStatus, "forbidden getsockopt (system call 55)"},
		// Only the forwards listen, opened before the filter: a VMM
		// taken over bound and listened on a port of its own.
		{"listen:0.0.0.0:0", []string{"--net", "user"}, sandbox.ExitStatus, "forbidden bind (system call 49)"},
		// Another ABI's number is said as such: i386's getpid (20) was
		// named writev, x86-64's 20.
		{"int80", nil, sandbox.ExitStatus, "smolvmm: seccomp: the VMM attempted the forbidden 32-bit (int 0x80) system call 20 and was stopped"},
		{"x32", nil, sandbox.ExitStatus, "smolvmm: seccomp: the VMM attempted the forbidden x32 system call 39 and was stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.hook+strings.Join(tt.args, ""), func(t *testing.T) {
			args := append([]string{"demo"}, tt.args...)
			if len(tt.args) > 0 && tt.args[0] == "--net" {
				args = append([]string{"run", "-k", guests.ForTest(t, "demo")}, tt.args...)
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), testHookEnv+"="+tt.hook)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("status %d, stderr %q; want status %d and %q", status, stderr.String(), tt.status, tt.want)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer that a command's stderr may be copied
// into while the test reads it (in a failure's message).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningVM starts smolvmm on the vblk guest, which hangs once it has
// flushed, and returns it running.
func runningVM(t *testing.T, env []string, extra ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	return runningVMWith(t, nil, env, extra...)
}

// runningVMWith is runningVM with the command set up by prep, when not
// nil, before it starts.
func runningVMWith(t *testing.T, prep func(*exec.Cmd), env []string, extra ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "-k", guests.ForTest(t, "vblk"), "-m", "32"}
	if !slices.Contains(extra, "--net") { // given once: a repeat is refused
		args = append(args, "--net", "none")
	}
	args = append(append(args, "-d", img, "-a", "seq=7 sector=5 hang"), extra...)
	cmd := exec.Command(smolvmmBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	if prep != nil {
		prep(cmd)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the guest's output ended before it hung; stderr:\n%s", stderr)
			}
			if strings.Contains(l, "vblk: flush ok") {
				go func() {
					for range lines {
					}
				}()
				return cmd, stderr
			}
		case <-deadline:
			t.Fatalf("the guest did not flush within 60 s; stderr:\n%s", stderr)
		}
	}
}

// procStatus returns the fields of /proc/PID/status of every thread of pid.
func procStatus(t *testing.T, pid int) []map[string]string {
	t.Helper()
	paths, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(paths) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	var all []map[string]string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a thread that ended meanwhile (the executable's release ends its own)
		}
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{"path": p}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		all = append(all, m)
	}
	if len(all) == 0 {
		t.Fatalf("process %d has no threads left to read", pid)
	}
	return all
}

// TestRunningVMIsFiltered: every thread of a running VM is in seccomp
// filter mode with no_new_privs.
func TestRunningVMIsFiltered(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	cmd, _ := runningVM(t, nil)
	checkFiltered(t, cmd.Process.Pid)
	if os.Geteuid() != 0 {
		return
	}
	// Both at once, as a root user runs it: filtered, and nobody with
	// no capability left, bounding set included.
	cmd, _ = runningVM(t, nil, "--user", "nobody")
	checkFiltered(t, cmd.Process.Pid)
	for _, st := range procStatus(t, cmd.Process.Pid) {
		checkNoCaps(t, st, "CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd")
		if uid, _, _ := strings.Cut(st["Uid"], "\t"); uid == "0" {
			t.Errorf("--user nobody: %s: Uid %q", st["path"], st["Uid"])
		}
	}
}

// TestContainInheritedFDs: descriptors the VMM's parent left open (here
// a pipe and a file, as exec.Cmd.ExtraFiles pass them) are closed before
// the VM runs: a jailed, filtered VMM held its caller's /dev/null and
// pipes, and run one that -a or another flag's value named as --ready-fd,
// or SMOLVMM_JAILED named without --jail. The VMM's own descriptors are
// there (its disk image).
func TestContainInheritedFDs(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	mine := filepath.Join(t.TempDir(), "callers-file")
	f, err := os.Create(mine)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pipeLink string
	if st, err := w.Stat(); err == nil {
		pipeLink = fmt.Sprintf("pipe:[%d]", st.Sys().(*syscall.Stat_t).Ino)
	}
	// The file is descriptor 4 (ExtraFiles start at 3). Named as another
	// flag's value, or by jailEnv outside a jail, it was kept.
	for _, tt := range []struct {
		args, env []string
	}{
		{nil, nil},
		{[]string{"--user", "nobody"}, nil},
		{[]string{"--ready", "--ready-fd=4"}, nil},
		{nil, []string{jailEnv + "=4"}},
	} {
		args := tt.args
		t.Run(strings.Join(append(args, tt.env...), " "), func(t *testing.T) {
			if slices.Contains(args, "--user") && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			cmd, stderr := runningVMWith(t, func(cmd *exec.Cmd) { cmd.ExtraFiles = []*os.File{w, f} }, tt.env, args...)
			dir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var links []string
			for _, e := range ents {
				l, err := os.Readlink(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				links = append(links, e.Name()+" -> "+l)
				if l == mine || l == pipeLink {
					t.Errorf("the running VMM still holds its caller's %s as descriptor %s", l, e.Name())
				}
			}
			if !slices.ContainsFunc(links, func(l string) bool { return strings.HasSuffix(l, "/disk.img") }) {
				t.Errorf("the VMM's descriptors %q lack its disk image; stderr:\n%s", links, stderr)
			}
		})
	}
}

// checkNoCaps fails unless each of the capability sets named is empty in
// st, a thread's /proc status.
func checkNoCaps(t *testing.T, st map[string]string, sets ...string) {
	t.Helper()
	for _, c := range sets {
		if st[c] != "0000000000000000" {
			t.Errorf("%s: %s %s, want none", st["path"], c, st[c])
		}
	}
}

// rootSetpriv returns setpriv(1)'s path, or skips t unless it runs as
// root (why, when not "", says what for) with setpriv installed.
func rootSetpriv(t *testing.T, why string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if why != "" {
			t.Skip("needs root, " + why)
		}
		t.Skip("needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv(1) from util-linux")
	}
	return setpriv
}

// nobodyUser returns user nobody's ids, or skips t where there is none.
func nobodyUser(t *testing.T) sandbox.Credentials {
	t.Helper()
	nobody, err := sandbox.LookupUser("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	return nobody
}

// checkFiltered fails unless every thread of pid runs under one seccomp
// filter with no_new_privs.
func checkFiltered(t *testing.T, pid int) {
	t.Helper()
	for _, st := range procStatus(t, pid) {
		if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" || st["Seccomp_filters"] != "1" {
			t.Errorf("%s: Seccomp %q, NoNewPrivs %q, Seccomp_filters %q; want 2, 1, 1",
				st["path"], st["Seccomp"], st["NoNewPrivs"], st["Seccomp_filters"])
		}
	}
}

// TestUserDropsRoot: a VM started as root with --user nobody runs as
// nobody on every thread, with no groups and no capabilities, and cannot
// open a file only root may read (the hook tries, with the filter off so
// that the permission check itself is what answers).
func TestUserDropsRoot(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody := nobodyUser(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--user", "nobody"}, {"--uid", fmt.Sprint(nobody.UID), "--gid", fmt.Sprint(nobody.GID)}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd, stderr := runningVM(t, []string{testHookEnv + "=open:" + secret}, append(args, "--no-seccomp")...)
			wantID := fmt.Sprintf("%d\t%d\t%d\t%d", nobody.UID, nobody.UID, nobody.UID, nobody.UID)
			wantGID := fmt.Sprintf("%d\t%d\t%d\t%d", nobody.GID, nobody.GID, nobody.GID, nobody.GID)
			for _, st := range procStatus(t, cmd.Process.Pid) {
				if st["Uid"] != wantID || st["Gid"] != wantGID || st["Groups"] != "" {
					t.Errorf("%s: Uid %q Gid %q Groups %q; want %q, %q, none", st["path"], st["Uid"], st["Gid"], st["Groups"], wantID, wantGID)
				}
				checkNoCaps(t, st, "CapInh", "CapPrm", "CapEff", "CapAmb")
			}
			// Wait copies the rest of the VM's stderr: all of it is
			// there to check, not what had been copied so far.
			cmd.Process.Kill()
			cmd.Wait()
			if want := "smolvmm-test: open " + secret + ": permission denied"; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), want)
			}
		})
	}
}

// TestUserPagemapHidesFrames: a VMM started as root with --uid and
// --snapshot holds a descriptor of its pagemap (a snapshot skips the
// pages never populated through it), and reads of it show no page frame
// numbers: it was opened as root, with CAP_SYS_ADMIN, before the drop, and
// the kernel, which decides at the open, went on showing them to the VMM
// running as that user. The test reads through the VMM's own descriptor
// (pidfd_getfd), since a new open would be the test's.
func TestUserPagemapHidesFrames(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// A uid and gid of the VM's own, no one's: snapshots are refused for
	// the host's nobody (checkSnapshotFlags).
	const id = 61241
	dir := filepath.Join(t.TempDir(), "snaps")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, id, id); err != nil {
		t.Fatal(err)
	}
	cmd, stderr := runningVM(t, nil, "--uid", strconv.Itoa(id), "--gid", strconv.Itoa(id), "--snapshot", filepath.Join(dir, "s.snap"))
	pid := cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	pagemapFD := -1
	for _, e := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); target == fmt.Sprintf("/proc/%d/pagemap", pid) {
			fmt.Sscan(e.Name(), &pagemapFD)
		}
	}
	if pagemapFD < 0 {
		t.Fatalf("the VMM holds no descriptor of its pagemap; stderr:\n%s", stderr)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, pagemapFD, 0)
	if err != nil {
		t.Skipf("pidfd_getfd: %v", err)
	}
	pagemap := os.NewFile(uintptr(fd), "pagemap")
	defer pagemap.Close()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Each mapping's first pages: the VMM's code, data, heap and stacks.
	present, withFrame := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(maps)), "\n") {
		var start, end uint64
		if _, err := fmt.Sscanf(line, "%x-%x", &start, &end); err != nil {
			t.Fatalf("maps line %q: %v", line, err)
		}
		pages := min((end-start)/4096, 64)
		buf := make([]byte, 8*pages)
		if n, _ := pagemap.ReadAt(buf, int64(start/4096*8)); n < len(buf) {
			continue // past the user address space (vsyscall)
		}
		for i := range pages {
			e := binary.LittleEndian.Uint64(buf[8*i:])
			if e&(1<<63) != 0 {
				present++
				if e&(1<<55-1) != 0 {
					withFrame++
				}
			}
		}
	}
	if present == 0 || withFrame != 0 {
		t.Errorf("through the VMM's pagemap descriptor, %d present pages of %d show their page frame number; want none, of some", withFrame, present)
	}
}

// TestContainFlagMistakes: contradictory containment flags are
// command-line mistakes.
func TestContainFlagMistakes(t *testing.T) {
	bin := smolvmmBin(t)
	tests := []struct{ args, want string }{
		{"--user nobody --uid 5 --gid 5", "give one of them"},
		{"--uid 5", "--uid and --gid go together"},
		{"--user root", "other than root"},
		{"--uid 0 --gid 0", "other than root"},
		{"--uid 65534 --gid 0", "--gid 0: that is root's group"},
		{"--user no-such-user-here", "no such user"},
		// Past the kernel's ids: they ran the VM in group 0, or failed
		// late (status 1) blaming --user for --uid.
		{"--uid 65534 --gid 4294967295", "--gid 4294967295: ids go up to 4294967294"},
		{"--uid 65534 --gid 4294967296", "--gid 4294967296: ids go up to 4294967294"},
		{"--uid 4294967296 --gid 5", "--uid 4294967296: ids go up to 4294967294"},
		{"--user 4294967295", "--user 4294967295: uid 4294967295 is out of range"},
		{"--user 4294967296", "--user 4294967296: uid 4294967296 is out of range"},
		// A uid no entry names has no known group: it got its own
		// number as a gid.
		{"--user 4294967294", "--user 4294967294: uid 4294967294 has no entry in the user database, which would give its group (give its group too, with --uid and --gid)"},
	}
	for _, tt := range tests {
		out, err := exec.Command(bin, append([]string{"demo"}, strings.Fields(tt.args)...)...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tt.want) {
			t.Errorf("demo %s: %v, output %q; want status 2 and %q", tt.args, err, out, tt.want)
		}
	}
}

// TestNegativeIDs: -1 is what --uid and --gid hold when not given, and
// a -1 typed on the command line was taken as not given: the VM ran as
// root with no word of it. A negative id is a usage error, on every
// command that drops privileges, said of the flag that has it.
func TestNegativeIDs(t *testing.T) {
	bin := smolvmmBin(t)
	dir := t.TempDir()
	kernel := filepath.Join(dir, "kernel")
	if err := os.WriteFile(kernel, elf64Multiboot(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmds := [][]string{
		{"demo"},
		{"run", "-k", kernel, "--net", "none"},
		{"up", "--cache", filepath.Join(dir, "cache"), "--mirror", "http://127.0.0.1:1/pub", "--image", filepath.Join(dir, "up.img")},
	}
	tests := []struct{ args, want string }{
		{"--uid -1 --gid -1", "--uid -1: ids are not negative; give a user id between 1 and 4294967294"},
		{"--uid -1 --gid 5", "--uid -1: ids are not negative; give a user id between 1 and 4294967294"},
		{"--uid 65534 --gid -1", "--gid -1: ids are not negative; give a group id between 1 and 4294967294"},
		{"--uid -1", "--uid -1: ids are not negative"},
		{"--gid -1", "--gid -1: ids are not negative"},
		{"--user nobody --uid -1", "--user and --uid/--gid: give one of them"},
		// Both given: the message said they go together.
		{"--uid 65534", "--uid 65534 without --gid: --uid and --gid go together"},
		{"--gid 65534", "--gid 65534 without --uid: --uid and --gid go together"},
	}
	for _, cmd := range cmds {
		for _, tt := range tests {
			args := append(slices.Clone(cmd), strings.Fields(tt.args)...)
			if cmd[0] == "up" {
				args = append(args, "rescue")
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "smolvmm "+cmd[0]+": "+tt.want) {
				t.Errorf("%s %s: %v, output %q; want status 2 and %q", cmd[0], tt.args, err, out, tt.want)
			}
		}
	}
}

// TestTerminalRestoredAfterForbiddenCall: the SIGSYS handler puts the
// console's terminal back in cooked mode before the process ends.
func TestTerminalRestoredAfterForbiddenCall(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) from util-linux for a pseudo-terminal")
	}
	bin := smolvmmBin(t)
	sh := testHookEnv + "=open:/etc/passwd " + bin + " demo >/dev/null 2>&1; echo status=$?; stty -a"
	out, _ := exec.Command("script", "-qec", sh, "/dev/null").Output()
	flags := strings.Fields(string(out))
	if !slices.Contains(flags, fmt.Sprintf("status=%d", sandbox.ExitStatus)) {
		t.Fatalf("smolvmm did not end with status %d:\n%s", sandbox.ExitStatus, out)
	}
	for _, want := range []string{"icanon", "echo", "isig", "opost", "icrnl"} {
		if !slices.Contains(flags, want) {
			t.Errorf("terminal left without %s:\n%s", want, out)
		}
	}
}

// TestChroot: with --chroot the running VM's root is the empty
// directory; a directory that is not empty, or that another user owns or
// may write, is refused before the guest runs (another user's was
// accepted: its owner could put a socket in it that the VMM would dial as
// its shared network's).
func TestChroot(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	cmd, _ := runningVM(t, nil, "--chroot", dir)
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", cmd.Process.Pid)); err != nil || root != dir {
		t.Errorf("root of the running VM %q (%v), want %q", root, err, dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	nobodys, open := filepath.Join(t.TempDir(), "nobodys"), filepath.Join(t.TempDir(), "open")
	for _, d := range []string{nobodys, open} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(nobodys, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o775); err != nil {
		t.Fatal(err)
	}
	// Refused before the VM is set up (-v would name the boot protocol),
	// in the flag's own words.
	for _, bad := range []struct{ dir, want string }{
		{dir, "not empty (it holds x); give --chroot a new empty directory owned by root that only root may write, such as one made as root with mkdir -m 0755 NEWDIR"},
		{filepath.Join(dir, "absent"), "absent does not exist; give --chroot a new empty directory"},
		{nobodys, "smolvmm demo: --chroot: " + nobodys + " is owned by uid 65534"},
		{open, "smolvmm demo: --chroot: " + open + " is writable by its group (mode 0775)"},
	} {
		out, err := exec.Command(smolvmmBin(t), "demo", "-v", "--chroot", bad.dir).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), bad.want) ||
			strings.Contains(string(out), "boot protocol") || strings.Contains(string(out), "before run") {
			t.Errorf("demo --chroot %s: %v, output %q; want status 1 and %q before the VM is set up", bad.dir, err, out, bad.want)
		}
	}
}

// TestContainVerbose: -v says what containment the VMM entered.
func TestContainVerbose(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody := nobodyUser(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--chroot", dir}, "smolvmm: root directory is now " + dir},
		{[]string{"--user", "nobody"}, fmt.Sprintf("smolvmm: running as uid %d gid %d, with no other groups and no capabilities", nobody.UID, nobody.GID)},
		{nil, "smolvmm: seccomp filter"},
	} {
		out, err := exec.Command(smolvmmBin(t), append([]string{"demo", "-v"}, tt.args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("demo -v %q: %v; output lacks %q:\n%s", tt.args, err, tt.want, out)
		}
	}
}

// TestTapUnderFilter: on a tap device (root, /dev/net/tun) the filtered
// VMM still moves the guest's frames: the vnet guest transmits its ARP
// request and receives what the host's side of the tap sends, and ends
// by its own exit, not by a refused call. With --jail the tap is opened
// in the host's network namespace and the VMM, in a namespace of its
// own, moves the same frames through it.
func TestTapUnderFilter(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	if os.Geteuid() != 0 {
		t.Skip("creating a tap device needs root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no tap devices here: %v", err)
	}
	name := fmt.Sprintf("smolt%d", os.Getpid()%100000)
	// A persistent tap made down beforehand (ip tuntap add) is brought
	// up: taking it down again at exit ran calls the filter forbids, and
	// the VM ended with status 148.
	for _, tc := range []struct{ jail, existing string }{{"", ""}, {"--jail", ""}, {"", "down"}} {
		t.Run("jail="+tc.jail+",existing="+tc.existing, func(t *testing.T) {
			name := name
			if tc.existing != "" {
				ip, err := exec.LookPath("ip")
				if err != nil {
					t.Skipf("no ip(8) to make a persistent tap: %v", err)
				}
				name += "p"
				if out, err := exec.Command(ip, "tuntap", "add", name, "mode", "tap").CombinedOutput(); err != nil {
					t.Skipf("ip tuntap add: %v: %s", err, out)
				}
				defer exec.Command(ip, "tuntap", "del", name, "mode", "tap").Run()
			}
			args := []string{"run", "-k", guests.ForTest(t, "vnet"), "-m", "32", "--net", "tap:" + name, "-v"}
			if tc.jail != "" {
				args = append(args, tc.jail)
			}
			out, err := exec.Command(smolvmmBin(t), args...).CombinedOutput()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			// Nothing answers ARP on a fresh tap: the guest says so and leaves
			// through the debug-exit port with 1 (status 3).
			for _, want := range []string{"seccomp filter of", "vnet: link status 0x1", "vnet: tx done", "FAIL: vnet: no arp reply"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if status != 3 {
				t.Errorf("status %d, want 3 (the guest's debug-exit 1)", status)
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// TestHostileGuestUnderFilter runs the hammer guest through smolvmm, with
// the filter on as by default: port and MMIO abuse, BARs moved over each
// other (new ioeventfds while the guest runs), virtio registers out of
// spec, on each network. Its exit status, lines and disk must be what the
// in-process test (vmm's TestHostileGuest) gets.
func TestHostileGuestUnderFilter(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "hammer")
	tests := []struct{ name, words, net string }{
		{"ports on the user network", "n=3000", "user"},
		{"ports without a network", "n=3000 seed=7", "none"},
		{"mmio sweep", "n=0 mmio=5000", "user"},
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat("/dev/net/tun"); err == nil {
			tests = append(tests, struct{ name, words, net string }{"ports on a tap", "n=3000", fmt.Sprintf("tap:smolh%d", os.Getpid()%100000)})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			data := bytes.Repeat([]byte("hammer-disk "), 1<<16)
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(smolvmmBin(t), "run", "-k", kernel, "-m", "32", "-a", tt.words, "--net", tt.net, "-d", img)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr // the VMM's log, which would split the guest's lines
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 0x55 {
				t.Errorf("smolvmm: %v, want status 0x55 (debug-exit 0x2a)", err)
			}
			for _, want := range []string{"hammer: pci abused", "hammer: virtio abused", "hammer: devices answer"} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("output lacks %q", want)
				}
			}
			if got, err := os.ReadFile(img); err != nil || !bytes.Equal(got, data) {
				t.Errorf("the hostile guest changed the disk image (%v)", err)
			}
			if t.Failed() {
				t.Logf("output:\n%s\nstderr:\n%s", out, stderr.Bytes())
			}
		})
	}
}

// TestVerboseSaysFilter: -v says whether the filter is on, with its size,
// or off; with --no-seccomp it said nothing about the filter.
func TestVerboseSaysFilter(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bin := smolvmmBin(t)
	for _, tt := range []struct {
		args      []string
		want, not string
	}{
		{[]string{"demo", "-v"}, "BPF instructions", "no seccomp filter"},
		{[]string{"demo", "-v", "--no-seccomp"}, "smolvmm: no seccomp filter (--no-seccomp): the VMM may make any system call\n", "BPF instructions"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) || strings.Contains(stderr.String(), tt.not) {
				t.Errorf("stderr %q: want %q, not %q", stderr.String(), tt.want, tt.not)
			}
		})
	}
}

// TestUserWithInheritableCaps: a root smolvmm started with inheritable or
// ambient capabilities (setpriv, a service manager's AmbientCapabilities)
// drops them with --user and boots; it refused with "capabilities 0x1000
// are left after dropping to uid 65534".
func TestUserWithInheritableCaps(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	setpriv := rootSetpriv(t, "")
	for _, caps := range [][]string{{"--inh-caps", "+net_admin"}, {"--inh-caps", "+net_admin", "--ambient-caps", "+net_admin"}} {
		t.Run(strings.Join(caps, " "), func(t *testing.T) {
			args := append(caps, "--", smolvmmBin(t), "demo", "--user", "nobody")
			out, err := exec.Command(setpriv, args...).CombinedOutput()
			if err != nil || strings.Contains(string(out), "capabilities") {
				t.Errorf("%v: %s", err, out)
			}
		})
	}
}

// TestStdFlagsKeptUnderFilter: a VMM whose standard descriptors are
// non-blocking (a shell or supervisor that shares them set O_NONBLOCK)
// runs its guest under the filter, which refuses F_SETFL on them, to its
// end, and leaves their status flags as it found them: Go's File.Fd does
// not make os.Stdin, os.Stdout or os.Stderr blocking. smolvmm called Fd
// on them before the filter for a change that Go does not make.
func TestStdFlagsKeptUnderFilter(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, tt := range []struct {
		name string
		args []string
		root bool // --user needs smolvmm started as root
	}{
		{"filter", nil, false},
		{"filter --user nobody", []string{"--user", "nobody"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			if tt.root {
				nobodyUser(t)
			}
			// A pipe os.Pipe did not make: os.StartProcess calls Fd on
			// the files it passes, which makes blocking the pipes Go made
			// non-blocking itself, and the test's stdin would be found so.
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
				t.Fatal(err)
			}
			r, w := os.NewFile(uintptr(p[0]), "stdin"), os.NewFile(uintptr(p[1]), "pipe")
			defer r.Close()
			defer w.Close()
			log, err := os.OpenFile(filepath.Join(t.TempDir(), "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NONBLOCK, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			// The open file descriptions the VMM's 0, 1 and 2 share.
			fds := [2]int{p[0], int(log.Fd())}
			flags := func() [2]int {
				var fl [2]int
				for i, fd := range fds {
					if fl[i], err = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil {
						t.Fatal(err)
					}
				}
				return fl
			}
			before := flags()
			if before[0]&unix.O_NONBLOCK == 0 || before[1]&(unix.O_NONBLOCK|unix.O_APPEND) != unix.O_NONBLOCK|unix.O_APPEND {
				t.Fatalf("flags before %#x, %#x: want O_NONBLOCK, and O_APPEND on the log", before[0], before[1])
			}
			cmd := exec.Command(smolvmmBin(t), append([]string{"demo", "-v"}, tt.args...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = r, log, log
			err = cmd.Run()
			out, rerr := os.ReadFile(log.Name())
			if rerr != nil {
				t.Fatal(rerr)
			}
			if err != nil || !bytes.Contains(out, []byte("installed on every thread")) {
				t.Fatalf("smolvmm demo -v %v: %v, want success under the filter; output:\n%s", tt.args, err, out)
			}
			if after := flags(); after != before {
				t.Errorf("status flags of stdin, stdout and stderr %#x, %#x after the VMM; were %#x, %#x", after[0], after[1], before[0], before[1])
			}
		})
	}
}

// TestDroppedLine: -v's line on the user the VMM runs as says "no
// capabilities" and, in a cgo build (which keeps the bounding set whole)
// or started without CAP_SETPCAP, that the bounding set is kept, and
// why; it said "no capabilities" alone while a cgo build's CapBnd was
// full. Building with CGO_ENABLED=0 is advised only where it empties the
// set: a cgo build started without CAP_SETPCAP was told to, and would
// have kept it.
func TestDroppedLine(t *testing.T) {
	creds := sandbox.Credentials{UID: 65534, GID: 65533}
	const base = "running as uid 65534 gid 65533, with no other groups and no capabilities"
	for _, tt := range []struct {
		kept sandbox.BoundingSetKept
		want string
	}{
		{0, base},
		{sandbox.KeptByCgo, base + " (the capability bounding set is kept whole: a build linked with cgo cannot empty it on every thread; build with CGO_ENABLED=0 for an empty one)"},
		{sandbox.KeptWithoutSetpcap, base + " (the capability bounding set is kept: emptying it takes CAP_SETPCAP, which smolvmm was started without; with no_new_privs on every thread it grants nothing)"},
		{sandbox.KeptByCgo | sandbox.KeptWithoutSetpcap, base + " (the capability bounding set is kept whole: emptying it takes CAP_SETPCAP, which smolvmm was started without, and a build linked with cgo cannot empty it on every thread either)"},
	} {
		if got := droppedLine(creds, tt.kept); got != tt.want {
			t.Errorf("droppedLine(kept %#x) = %q, want %q", tt.kept, got, tt.want)
		}
	}
}

// TestUserWithoutSetpcap: root started without CAP_SETPCAP in its
// bounding set (a service's CapabilityBoundingSet=CAP_SETUID CAP_SETGID
// ..., a pod that drops ALL and adds a few) runs its VM as nobody with
// no capability, the bounding set kept (CapBnd as it started) with
// no_new_privs, as -v says. It failed after the whole setup with
// "--user nobody: prctl(PR_CAPBSET_DROP, 0): operation not permitted".
func TestUserWithoutSetpcap(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	setpriv := rootSetpriv(t, "")
	nobody := nobodyUser(t)
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	_, bnd, _ := strings.Cut(string(self), "\nCapBnd:\t")
	full, err := strconv.ParseUint(bnd[:16], 16, 64)
	if err != nil {
		t.Fatalf("CapBnd %q: %v", bnd[:16], err)
	}
	wantBnd := fmt.Sprintf("%016x", full&^(1<<unix.CAP_SETPCAP))
	cmd, stderr := runningVMWith(t, func(cmd *exec.Cmd) {
		cmd.Args = append([]string{setpriv, "--bounding-set", "-setpcap", "--inh-caps=-all", "--"}, cmd.Args...)
		cmd.Path = setpriv
	}, nil, "--user", "nobody", "-v")
	for _, st := range procStatus(t, cmd.Process.Pid) {
		checkNoCaps(t, st, "CapInh", "CapPrm", "CapEff", "CapAmb")
		if st["CapBnd"] != wantBnd || st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" || !strings.HasPrefix(st["Uid"], fmt.Sprint(nobody.UID)+"\t") {
			t.Errorf("%s: CapBnd %s NoNewPrivs %q Seccomp %q Uid %q; want %s, 1, 2, nobody's", st["path"], st["CapBnd"], st["NoNewPrivs"], st["Seccomp"], st["Uid"], wantBnd)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	want := fmt.Sprintf("smolvmm: running as uid %d gid %d, with no other groups and no capabilities (the capability bounding set is kept: emptying it takes CAP_SETPCAP, which smolvmm was started without; with no_new_privs on every thread it grants nothing)\n", nobody.UID, nobody.GID)
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
}

// TestIDFlagsHelp: --uid and --gid show no default id: -1, their value
// when not given, is refused when typed.
func TestIDFlagsHelp(t *testing.T) {
	for _, cmd := range []string{"run", "demo", "up"} {
		out, _, status := runCLI(t, cmd, "--help")
		if status != 0 || strings.Contains(out, "(default: -1)") || !strings.Contains(out, "--uid UID") {
			t.Errorf("%s --help: status %d, --uid shown with its -1 or not at all:\n%s", cmd, status, out)
		}
	}
}

// TestFlagHelpPerCommand: a flag's help says what the command's flag
// takes: -p works on a shared user network too (it said "needs --net
// user"), and demo's guest is a multiboot kernel, whose --module has no
// NetBSD module type (demo showed run's help, which speaks of them).
func TestFlagHelpPerCommand(t *testing.T) {
	for _, tt := range []struct {
		cmd       string
		want, not []string
	}{
		{"run", []string{"needs the user network: --net user, user:NAME or user:/path.sock"}, []string{"needs --net user)"}},
		{"up", []string{"needs the user network: --net user, user:NAME or user:/path.sock"}, nil},
		{"demo", []string{"--module FILE ] boot module FILE, optionally followed by ,args for its multiboot command line"}, []string{"kmod", "rndseed"}},
	} {
		out, _, status := runCLI(t, tt.cmd, "--help")
		out = strings.Join(strings.Fields(out), " ") // the help wraps long lines
		if status != 0 {
			t.Errorf("%s --help: status %d", tt.cmd, status)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %q:\n%s", tt.cmd, w, out)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(out, n) {
				t.Errorf("%s --help has %q:\n%s", tt.cmd, n, out)
			}
		}
	}
}

// TestOrdinaryUserDropsCaps: smolvmm started by an ordinary user with
// capabilities (setpriv, as a service manager's AmbientCapabilities
// does) drops them on every thread before the guest runs, and empties
// its bounding set when it holds CAP_SETPCAP; it kept them (CapEff 3000
// with net_admin and net_raw) while --user's refusal said it had no
// privileges to drop, which now says it drops them. CAP_DAC_OVERRIDE
// opens root's /dev/kvm and files for nobody. The VMM is then not
// dumpable, which it stayed.
func TestOrdinaryUserDropsCaps(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	setpriv := rootSetpriv(t, "to start smolvmm as nobody with capabilities")
	nobody := nobodyUser(t)
	asNobody := func(caps string) []string {
		args := []string{setpriv, fmt.Sprintf("--reuid=%d", nobody.UID), fmt.Sprintf("--regid=%d", nobody.GID), "--clear-groups"}
		if caps != "" {
			args = append(args, "--inh-caps="+caps, "--ambient-caps="+caps)
		}
		return append(args, "--")
	}
	for _, tt := range []struct {
		name, caps, line string
		bounding         bool
	}{
		// Subtests named without commas: the disk's path has the name.
		{"net", "+dac_override,+net_admin,+net_raw", "capabilities 0x3002 dropped on every thread: the VMM runs as uid 65534 with none (its bounding set is kept: emptying it takes CAP_SETPCAP)", false},
		{"setpcap", "+dac_override,+setpcap", "capabilities 0x102 dropped on every thread: the VMM runs as uid 65534 with none", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd, stderr := runningVMWith(t, func(cmd *exec.Cmd) {
				cmd.Args = append(asNobody(tt.caps), cmd.Args...)
				cmd.Path = setpriv
			}, nil, "-v")
			for _, st := range procStatus(t, cmd.Process.Pid) {
				sets := []string{"CapInh", "CapPrm", "CapEff", "CapAmb"}
				if tt.bounding {
					sets = append(sets, "CapBnd")
				}
				checkNoCaps(t, st, sets...)
				if !strings.HasPrefix(st["Uid"], fmt.Sprint(nobody.UID)) || st["Seccomp"] != "2" {
					t.Errorf("%s: Uid %q Seccomp %q; want nobody's, under the filter", st["path"], st["Uid"], st["Seccomp"])
				}
			}
			// Not dumpable: the kernel then gives its /proc files
			// (but the world-readable directories) to root.
			// Dumpable, any process of nobody's took its /dev/kvm
			// and tap with pidfd_getfd.
			var st unix.Stat_t
			if err := unix.Stat(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid), &st); err != nil {
				t.Fatal(err)
			} else if st.Uid != 0 {
				t.Errorf("/proc/%d/environ is uid %d's: the VMM is dumpable, its descriptors open to any process of its user", cmd.Process.Pid, st.Uid)
			}
			// Wait copies the rest of the VM's stderr: the line, written
			// before the guest ran, may not have been copied yet.
			cmd.Process.Kill()
			cmd.Wait()
			if want := strings.Replace(tt.line, "65534", fmt.Sprint(nobody.UID), 1); !strings.Contains(stderr.String(), "smolvmm: "+want+"\n") {
				t.Errorf("-v lacks %q:\n%s", want, stderr)
			}
		})
	}
	// The snapshot broker, started before the VMM drops them, drops its
	// own: it keeps its user as the VMM does.
	t.Run("broker", func(t *testing.T) {
		snaps := filepath.Join(t.TempDir(), "snaps")
		if err := os.Mkdir(snaps, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(snaps, nobody.UID, nobody.GID); err != nil {
			t.Fatal(err)
		}
		cmd, stderr := runningVMWith(t, func(cmd *exec.Cmd) {
			cmd.Args = append(asNobody("+dac_override,+net_admin"), cmd.Args...)
			cmd.Path = setpriv
		}, nil, "--snapshot", filepath.Join(snaps, "s.snap"))
		children := childrenOf(cmd.Process.Pid)
		if len(children) != 1 {
			t.Fatalf("the VMM has children %v; want its broker alone\nstderr:\n%s", children, stderr)
		}
		deadline := time.Now().Add(20 * time.Second)
		for procStatus(t, children[0])[0]["Seccomp"] != "2" {
			if time.Now().After(deadline) {
				t.Fatalf("the broker installed no filter within 20 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, st := range procStatus(t, children[0]) {
			checkNoCaps(t, st, "CapInh", "CapPrm", "CapEff", "CapAmb")
		}
	})
	t.Run("--user", func(t *testing.T) {
		args := append(asNobody(""), smolvmmBin(t), "demo", "--user", "daemon")
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		want := fmt.Sprintf("--user and --uid need smolvmm to be started as root (it runs as uid %d); started by another user, the VMM runs as that user, and drops any capabilities it was given before its guest runs", nobody.UID)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), want) {
			t.Errorf("demo --user daemon as nobody: %v, %s; want status 2 and %q", err, out, want)
		}
	})
}

// TestCapsDroppedLine: -v of a cgo build started with only inheritable
// capabilities, which it keeps (sandbox.KeepsInheritable), says they
// were kept, not dropped.
func TestCapsDroppedLine(t *testing.T) {
	for _, tt := range []struct {
		name           string
		bounding, kept bool
		want, wantNot  string
	}{
		{"dropped", true, false, "capabilities 0x2000 dropped on every thread", "kept"},
		{"bounding kept", false, false, "(its bounding set is kept: emptying it takes CAP_SETPCAP)", "inheritable"},
		{"inheritable kept", false, true, "inheritable capabilities 0x2000 kept: a build linked with cgo cannot clear them on every thread", "dropped"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			line := capsDroppedLine(0x2000, tt.bounding, tt.kept)
			if !strings.Contains(line, tt.want) || strings.Contains(line, tt.wantNot) {
				t.Errorf("%q; want %q, without %q", line, tt.want, tt.wantNot)
			}
		})
	}
}

// TestCapsAdviceNoSeccomp: a cgo build refusing to run with capabilities
// under --no-seccomp (sandbox.DropCapabilities refuses inheritable ones
// alone then, with no filter to forbid execve) says that without
// --no-seccomp inheritable ones are kept; under the filter it adds
// nothing.
func TestCapsAdviceNoSeccomp(t *testing.T) {
	for _, tt := range []struct {
		noSeccomp bool
		want      string
	}{
		{false, ""},
		{true, "; with only inheritable capabilities, run it without --no-seccomp"},
	} {
		if got := capsAdviceNoSeccomp(tt.noSeccomp); got != tt.want {
			t.Errorf("capsAdviceNoSeccomp(%v) = %q; want %q", tt.noSeccomp, got, tt.want)
		}
	}
}

// TestExecForbidden: what run and its broker tell
// sandbox.DropCapabilities of the filter to come. Without the filter
// (--no-seccomp) execve is not forbidden, so that a cgo build refuses
// inheritable capabilities then; the broker reads the choice back from
// the mode its parent set.
func TestExecForbidden(t *testing.T) {
	for _, tt := range []struct {
		name      string
		noSeccomp bool
		broker    bool // the broker's choice, from brokerEnv
		want      bool
	}{
		{name: "run", want: true},
		{name: "run --no-seccomp", noSeccomp: true},
		{name: "broker", broker: true, want: true},
		{name: "broker --no-seccomp", broker: true, noSeccomp: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			filterOn := !tt.noSeccomp
			if tt.broker {
				t.Setenv(brokerEnv, brokerMode(!tt.noSeccomp))
				filterOn = brokerFiltered()
			}
			if got := execForbidden(filterOn); got != tt.want {
				t.Errorf("execForbidden = %v; want %v", got, tt.want)
			}
		})
	}
}
