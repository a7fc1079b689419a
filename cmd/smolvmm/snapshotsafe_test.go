package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testpty"
	"github.com/smolvmm/smolvmm/snapshot"
)

// oldContent stands for a snapshot worth keeping: it starts as
// snapshots do, so that --snapshot may replace it.
const oldContent = oldSnap + " worth keeping\n"

// oldSnap stands for a snapshot (damaged) that --snapshot may replace.
const oldSnap = snapshot.Magic + " an old snapshot"

// runCLIIn is runCLI with dir as the working directory.
func runCLIIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runProgramIn(t, dir, smolvmmBin(t), args...)
}

// runProgramIn runs prog with args in dir ("": this process's): its
// stdout, stderr and exit status.
func runProgramIn(t *testing.T, dir, prog string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	status := exitStatus(t, cmd.Run())
	return stdout.String(), stderr.String(), status
}

// exitStatus is the exit status of a command that err, its Run's or
// Wait's, ended; it fails t when the command did not run or end.
func exitStatus(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return 0
}

// dirNames lists dir's entries, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// keep writes oldContent to dir/name.
func keep(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(oldContent), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkKept fails unless path still holds oldContent.
func checkKept(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != oldContent {
		t.Fatalf("%s: %q, %v; want it untouched (%q)", path, b, err, oldContent)
	}
}

// checkOnlySnapshot checks that snap, in dir, is a valid snapshot and
// that nothing else (a temporary) is left in dir.
func checkOnlySnapshot(t *testing.T, dir, snap string) {
	t.Helper()
	f, err := snapshot.Open(snap)
	if err != nil {
		t.Fatalf("%s: %v", snap, err)
	}
	f.Close()
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("left in the directory: %q; want only %s", names, filepath.Base(snap))
	}
}

// checkOnlyKept checks that path, in dir, is untouched and that nothing
// else (a temporary) is left in dir.
func checkOnlyKept(t *testing.T, dir, path string) {
	t.Helper()
	checkKept(t, path)
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("left in the directory: %q; want only %s", names, filepath.Base(path))
	}
}

// TestCLISnapshotSamePathRefused: a --snapshot file that is the kernel, a
// module, a disk, a share or the restore file (by device and inode, through
// a symlink or another spelling) is a usage error naming both, and keeps
// its content.
func TestCLISnapshotSamePathRefused(t *testing.T) {
	dir := t.TempDir()
	kernel := keep(t, dir, "kernel")
	module := keep(t, dir, "mod")
	disk := keep(t, dir, "victim.img")
	snap := keep(t, dir, "b.snap")
	share := filepath.Join(dir, "share")
	if err := os.Mkdir(share, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.snap")
	if err := os.Symlink("b.snap", link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, flag, target string // the flag and file --snapshot must name
		args               []string
		snapArg            string
	}{
		{"kernel", "-k", kernel, []string{"-k", kernel}, kernel},
		{"module", "--module", module, []string{"-k", kernel, "--module", module + ",args"}, module},
		{"disk", "-d", disk, []string{"-k", kernel, "-d", disk + ",ro"}, disk},
		{"disk by another spelling", "-d", "./victim.img", []string{"-k", "kernel", "-d", "./victim.img"}, "victim.img"},
		{"share", "--share", share, []string{"-k", kernel, "--share", share}, share},
		{"restore by symlink", "--restore", link, []string{"--restore", link}, "b.snap"},
		{"restore by another spelling", "--restore", "./b.snap", []string{"--restore", "./b.snap"}, "b.snap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, snapArg := tt.target, tt.snapArg
			args := append(append([]string{"run"}, tt.args...), "--net", "none", "--snapshot", snapArg)
			_, stderr, status := runCLIIn(t, dir, args...)
			if status != 2 || !strings.Contains(stderr, "--snapshot "+snapArg) || !strings.Contains(stderr, tt.flag+" "+target) {
				t.Fatalf("status %d, stderr %q; want 2 naming --snapshot %s and %s %s", status, stderr, snapArg, tt.flag, target)
			}
			for _, p := range []string{kernel, module, disk, snap} {
				checkKept(t, p)
			}
		})
	}
}

// TestCLISnapshotKeepsOldFile: a run that fails before its snapshot (a
// kernel that does not exist, a guest never ready, with or without the
// seccomp filter) leaves the --snapshot file as it was and nothing beside
// it.
func TestCLISnapshotKeepsOldFile(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"no kernel", []string{"-k", "nonexist"}, 1, "nonexist"},
		// 1: the counter's debug-exit 0, with the warning.
		{"never ready", []string{"-k", counter, "-m", "16", "-a", "n=3 at=0"}, 1, "the guest never became ready"},
		{"never ready without filter", []string{"-k", counter, "-m", "16", "-a", "n=3 at=0", "--no-seccomp"}, 1, "the guest never became ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			snap := keep(t, dir, "keep.snap")
			args := append(append([]string{"run"}, tt.args...), "--net", "none", "--snapshot", snap)
			_, stderr, status := runCLIIn(t, dir, args...)
			if status != tt.status || !strings.Contains(stderr, tt.want) {
				t.Fatalf("status %d, stderr %q; want %d and %q", status, stderr, tt.status, tt.want)
			}
			checkOnlyKept(t, dir, snap)
		})
	}
}

// TestCLISnapshotLockedRefused: a --snapshot file another process holds
// locked (a VM's disk, exclusive; a VM restored from it, shared) is
// refused naming the holder, and keeps its content.
func TestCLISnapshotLockedRefused(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	for _, how := range []int{unix.LOCK_EX, unix.LOCK_SH} {
		t.Run(map[int]string{unix.LOCK_EX: "disk of a VM", unix.LOCK_SH: "restored from"}[how], func(t *testing.T) {
			dir := t.TempDir()
			snap := keep(t, dir, "held.snap")
			f, err := os.Open(snap)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := unix.Flock(int(f.Fd()), how); err != nil {
				t.Fatal(err)
			}
			_, stderr, status := runCLIIn(t, dir, "run", "-k", counter, "-m", "16", "-a", "n=120 at=100", "--net", "none",
				"--snapshot", snap, "--snapshot-exit")
			// The holder and the advice once each, no errno's text.
			if status != 1 || !strings.Contains(stderr, "--snapshot "+snap+" is in use: process "+strconv.Itoa(os.Getpid())+" (") ||
				strings.Count(stderr, "holds its lock") != 1 || strings.Contains(stderr, "temporarily unavailable") ||
				!strings.HasSuffix(stderr, "(stop that VM, or write the snapshot elsewhere)\n") {
				t.Fatalf("status %d, stderr %q; want 1, in use, held by process %d, said once", status, stderr, os.Getpid())
			}
			checkOnlyKept(t, dir, snap)
		})
	}
}

// TestCLISnapshotReplaces: a snapshot over an existing file replaces it
// with a complete snapshot and leaves no temporary file; a symlink named
// by --snapshot stays a symlink to the new snapshot.
func TestCLISnapshotReplaces(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	dir := t.TempDir()
	snap := keep(t, dir, "old.snap")
	link := filepath.Join(dir, "link.snap")
	if err := os.Symlink("old.snap", link); err != nil {
		t.Fatal(err)
	}
	_, stderr, status := runCLIIn(t, dir, "run", "-k", counter, "-m", "16", "-a", "n=120 at=100", "--net", "none",
		"--snapshot", link, "--snapshot-exit")
	if status != 0 {
		t.Fatalf("status %d, stderr:\n%s", status, stderr)
	}
	if names := dirNames(t, dir); strings.Join(names, " ") != "link.snap old.snap" {
		t.Fatalf("directory holds %q; want link.snap and old.snap", names)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link.snap: %v, %v; want it still a symlink", fi, err)
	}
	f, err := snapshot.Open(snap)
	if err != nil {
		t.Fatalf("the new snapshot: %v", err)
	}
	f.Close()
}

// TestCLISnapshotRelativeDisk: a snapshot of a VM whose disk path is
// relative, under the seccomp filter, is written and restores.
func TestCLISnapshotRelativeDisk(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dk.img"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, status := runCLIIn(t, dir, "run", "-k", counter, "-m", "16", "-a", "n=120 at=100", "--net", "none",
		"-d", "dk.img", "--snapshot", "dk.snap", "--snapshot-exit")
	if status != 0 {
		t.Fatalf("snapshot: status %d, stderr:\n%s", status, stderr)
	}
	out, stderr, status := runCLIIn(t, dir, "run", "--restore", "dk.snap", "--net", "none")
	if status != 1 || !strings.HasSuffix(out, "count 120\r\ncounter: done\r\n") {
		t.Fatalf("restore: status %d, output %q, stderr:\n%s", status, out, stderr)
	}
	// A restore's --snapshot that is the snapshot's own disk.
	_, stderr, status = runCLIIn(t, dir, "run", "--restore", "dk.snap", "--net", "none", "--snapshot", "./dk.img")
	if status != 2 || !strings.Contains(stderr, "the disk "+filepath.Join(dir, "dk.img")+" of --restore dk.snap") {
		t.Fatalf("snapshot over the restore's disk: status %d, stderr %q; want 2 naming the disk", status, stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "dk.img")); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("dk.img: %v, %v; want it kept", fi, err)
	}
}

// TestCLIRestoreRefusesBootFlags: -a, --boot and --module with --restore
// are usage errors, as -k is.
func TestCLIRestoreRefusesBootFlags(t *testing.T) {
	snap := keep(t, t.TempDir(), "r.snap")
	for _, flag := range [][]string{{"-a", "x"}, {"--append", ""}, {"--boot", "multiboot"}, {"--module", "m"}} {
		t.Run(flag[0], func(t *testing.T) {
			args := append([]string{"run", "--restore", snap, "--net", "none"}, flag...)
			_, stderr, status := runCLI(t, args...)
			name := strings.Replace(flag[0], "--append", "-a", 1)
			if status != 2 || !strings.Contains(stderr, "--restore "+snap+" and "+name) || !strings.Contains(stderr, "booted") {
				t.Fatalf("status %d, stderr %q; want 2 naming --restore and %s, with the reason", status, stderr, name)
			}
		})
	}
}

// openPTYPair opens a new pseudo-terminal: its master and terminal sides.
func openPTYPair(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	return testpty.Open(t)
}

// TestCLISnapshotKeyRepeated: under the seccomp filter, Ctrl-A s replaces
// the --snapshot file each time (the file's old content until then); one
// that would write over a snapshot a VM restored from still holds is
// refused and changes nothing; the end leaves only the file.
func TestCLISnapshotKeyRepeated(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	snap := keep(t, dir, "key.snap")
	vm := startKeyedVM(t, snap)
	press := vm.press
	ino := func() uint64 {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(snap, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	valid := func() {
		t.Helper()
		f, err := snapshot.Open(snap)
		if err != nil {
			t.Fatalf("%s: %v\nstderr:\n%s", snap, err, vm.log.String())
		}
		f.Close()
	}
	if l := press(); !strings.HasPrefix(l, "smolvmm: snapshot "+snap+": 16.0 MiB written") {
		t.Fatalf("first: %q", l)
	}
	valid()
	first := ino()
	// A VM restored from the first snapshot.
	restored, err := os.Open(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := unix.Flock(int(restored.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if l := press(); !strings.HasPrefix(l, "smolvmm: snapshot "+snap) {
		t.Fatalf("second: %q", l)
	}
	valid()
	second := ino()
	if second == first {
		t.Fatal("the second snapshot was written over the first, which a VM restored from")
	}
	// The third would go over the first: refused while it is held.
	if l := press(); !strings.Contains(l, "in use") {
		t.Fatalf("third, over the restored-from snapshot: %q", l)
	}
	if ino() != second {
		t.Fatal("a refused snapshot replaced the file")
	}
	valid()
	restored.Close()
	if l := press(); !strings.HasPrefix(l, "smolvmm: snapshot "+snap) {
		t.Fatalf("fourth: %q", l)
	}
	valid()
	vm.quit()
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("left in the directory: %q; want only key.snap", names)
	}
	valid()
}

// TestCLISnapshotDroppedUser: with --uid, the snapshot is renamed into
// place after privileges are dropped: a directory that uid may not write
// in is refused at the start (the file kept, nothing left beside it), one
// it may gets the snapshot.
func TestCLISnapshotDroppedUser(t *testing.T) {
	if !kvmUsable() || os.Geteuid() != 0 {
		t.Skip("needs /dev/kvm and root")
	}
	counter := guests.ForTest(t, "counter")
	// A uid and gid of the VM's own, no one's: snapshots are refused for
	// the host's nobody (checkSnapshotFlags).
	const id = 61241
	for _, owned := range []bool{false, true} {
		t.Run(map[bool]string{false: "root's directory", true: "the user's directory"}[owned], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if owned {
				if err := os.Chown(dir, id, id); err != nil {
					t.Fatal(err)
				}
			}
			snap := keep(t, dir, "u.snap")
			_, stderr, status := runCLIIn(t, dir, "run", "-k", counter, "-m", "16", "-a", "n=120 at=100", "--net", "none",
				"--snapshot", snap, "--snapshot-exit", "--uid", strconv.Itoa(id), "--gid", strconv.Itoa(id))
			if !owned {
				if status != 2 || !strings.Contains(stderr, "may not replace files in "+dir) {
					t.Fatalf("status %d, stderr %q; want 2, refused", status, stderr)
				}
				checkKept(t, snap)
			} else {
				if status != 0 {
					t.Fatalf("status %d, stderr:\n%s", status, stderr)
				}
				f, err := snapshot.Open(snap)
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			if names := dirNames(t, dir); len(names) != 1 {
				t.Fatalf("left in the directory: %q; want only u.snap", names)
			}
		})
	}
}

// TestCLISnapshotKilledWriterCleaned: a smolvmm killed (SIGKILL) while it
// runs with --snapshot has its temporaries removed by its broker, which
// sees it gone; one killed with its broker (its process group) leaves
// them beside the file, and the next run with that file removes them.
func TestCLISnapshotKilledWriterCleaned(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	for _, group := range []bool{false, true} {
		t.Run(map[bool]string{false: "the VMM", true: "with its broker"}[group], func(t *testing.T) {
			dir := t.TempDir()
			snap := keep(t, dir, "k.snap")
			cmd, stderr := runningVMWith(t, func(cmd *exec.Cmd) {
				cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
			}, nil, "--snapshot", snap)
			pid := cmd.Process.Pid
			if group {
				pid = -pid
			}
			if err := unix.Kill(pid, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// Returns once the broker, which holds stderr too, ended.
			cmd.Wait()
			names := dirNames(t, dir)
			tmps := 0
			for _, n := range names {
				if strings.HasPrefix(n, ".k.snap.") && strings.HasSuffix(n, ".tmp") {
					tmps++
				}
			}
			if !group {
				if tmps != 0 {
					t.Fatalf("after SIGKILL of the VMM the directory holds %q; want its broker to have removed the temporaries\nstderr:\n%s", names, stderr)
				}
				return
			}
			if tmps == 0 {
				t.Fatalf("after SIGKILL the directory holds %q; want the killed run's temporaries\nstderr:\n%s", names, stderr)
			}
			counter := guests.ForTest(t, "counter")
			_, out, status := runCLIIn(t, dir, "run", "-k", counter, "-m", "16", "-a", "n=3 at=0", "--net", "none", "--snapshot", snap)
			if status != 1 || !strings.Contains(out, "the guest never became ready") {
				t.Fatalf("status %d, stderr %q; want 1, never ready", status, out)
			}
			if got := dirNames(t, dir); len(got) != 1 || got[0] != "k.snap" {
				t.Fatalf("after the next run: %q (before it: %q); want only k.snap", got, names)
			}
		})
	}
}

// TestCLISnapshotKeyWithoutFile: Ctrl-A s on a run without --snapshot
// is not silent:
// says, in one line, that there is no snapshot file and how to give one,
// and the guest runs on (Ctrl-A x still quits it).
func TestCLISnapshotKeyWithoutFile(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	r := startOnPTY(t, "run", "-k", spinKernel(t), "-m", "16", "--net", "none")
	ptm, cmd, stderr, waited := r.ptm, r.cmd, r.stderr, r.waited
	go io.Copy(io.Discard, ptm) // the console's output
	// Both keys at once: the escape reader serves them in order, and the
	// note is written before Ctrl-A s returns, so it precedes the exit.
	if _, err := ptm.Write([]byte{0x01, 's', 0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-waited // stderr is complete only once Wait has returned
		t.Fatalf("no exit within 60 s of Ctrl-A s, Ctrl-A x; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if err := r.err; !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130; stderr:\n%s", err, stderr.String())
	}
	var notes []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "smolvmm: C-a s") {
			notes = append(notes, l)
		}
	}
	const want = "smolvmm: C-a s: no snapshot file: run with --snapshot FILE"
	if len(notes) != 1 || notes[0] != want {
		t.Fatalf("after Ctrl-A s: %q, want one line %q; stderr:\n%s", notes, want, stderr.String())
	}
}

// ptyRun is smolvmm started by startOnPTY.
type ptyRun struct {
	ptm    *os.File // the console's terminal: the guest's output, the keys
	cmd    *exec.Cmd
	stderr *lockedBuffer // complete once waited is closed
	waited chan struct{} // closed once Wait has returned, with err
	err    error
}

// waitSpinning waits until r's guest (readySpinKernel's) runs, as its
// console's first byte says (bench_test.go), and then discards its
// console.
func waitSpinning(t *testing.T, r *ptyRun) {
	t.Helper()
	if err := r.ptm.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var first [1]byte
	if _, err := io.ReadFull(r.ptm, first[:]); err != nil || first[0] != 'S' {
		t.Fatalf("the guest's console began %q (%v), want S; stderr:\n%s", first[:], err, r.stderr)
	}
	if err := r.ptm.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, r.ptm)
}

// startOnPTY starts smolvmm with args, its console on a pseudo-terminal.
// On every path out of the test (a Fatal, a deadline) smolvmm is killed
// and reaped, not left running; Wait is on its own goroutine, so that the
// cleanup and the test share its one call.
func startOnPTY(t *testing.T, args ...string) *ptyRun {
	t.Helper()
	return startCmdOnPTY(t, exec.Command(smolvmmBin(t), args...))
}

// startCmdOnPTY is startOnPTY for a command of the caller's (smolvmm run
// through a shell that sets a limit first).
func startCmdOnPTY(t *testing.T, cmd *exec.Cmd) *ptyRun {
	t.Helper()
	ptm, pts := openPTYPair(t)
	r := &ptyRun{ptm: ptm, cmd: cmd, stderr: new(lockedBuffer), waited: make(chan struct{})}
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = pts, pts, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.waited)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.waited
	})
	return r
}

// TestCLISnapshotKeyFailedNotNeverReady: when every Ctrl-A s failed (here
// a 1-block file size limit: EFBIG, Go ignores SIGXFSZ), the closing
// warning says the attempts failed, how many and the last error, not that
// the guest never became ready, which it need not have been told to be.
func TestCLISnapshotKeyFailedNotNeverReady(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	snap := keep(t, t.TempDir(), "f.snap")
	r := startCmdOnPTY(t, exec.Command("sh", "-c", `ulimit -f 1 && exec "$0" "$@"`, smolvmmBin(t),
		"run", "-k", spinKernel(t), "-m", "16", "--net", "none", "--snapshot", snap))
	go io.Copy(io.Discard, r.ptm) // the console's output
	failed := func() int { return strings.Count(r.stderr.String(), "smolvmm: C-a s: --snapshot "+snap+": ") }
	deadline := time.After(60 * time.Second)
	for n := 1; n <= 2; n++ {
		if _, err := r.ptm.Write([]byte{0x01, 's'}); err != nil {
			t.Fatal(err)
		}
		// Each attempt's failure is printed as it happens, off the
		// input's goroutine: wait for it before the next key.
		for failed() < n {
			select {
			case <-r.waited:
				t.Fatalf("smolvmm ended (%v) before C-a s number %d failed; stderr:\n%s", r.err, n, r.stderr)
			case <-deadline:
				t.Fatalf("C-a s number %d did not fail within 60 s; stderr:\n%s", n, r.stderr)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if _, err := r.ptm.Write([]byte{0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.waited:
	case <-deadline:
		t.Fatalf("no exit within 60 s of Ctrl-A x; stderr:\n%s", r.stderr)
	}
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130; stderr:\n%s", r.err, r.stderr)
	}
	stderr := r.stderr.String()
	want := "smolvmm run: warning: --snapshot " + snap + ": no snapshot was taken and the file is as it was: the 2 snapshot attempts failed, the last with: "
	if i := strings.Index(stderr, want); i < 0 || !strings.Contains(stderr[i:], "file too large") || strings.Contains(stderr, "never became ready") {
		t.Fatalf("stderr:\n%s\nwant the warning %q... ending with the last error (file too large), and no never-ready wording", stderr, want)
	}
	checkKept(t, snap)
}

// keyedVM is a smolvmm run of the spinning guest with --snapshot, its
// console on a terminal, for tests that press Ctrl-A s.
type keyedVM struct {
	t     *testing.T
	cmd   *exec.Cmd
	ptm   *os.File
	lines *bufio.Scanner
	log   strings.Builder // stderr so far
}

// startKeyedVM starts the spinning guest with --snapshot snap; the VM is
// killed at the end of the test should it fail first.
func startKeyedVM(t *testing.T, snap string) *keyedVM {
	t.Helper()
	ptm, pts := openPTYPair(t)
	cmd := exec.Command(smolvmmBin(t), "run", "-k", spinKernel(t), "-m", "16", "--net", "none", "--snapshot", snap)
	cmd.Stdin, cmd.Stdout = pts, pts
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The guest spins forever: a Fatal must not leave smolvmm running.
	// (After quit's Wait, this Wait returns at once.)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	go io.Copy(io.Discard, ptm) // the console's output
	return &keyedVM{t: t, cmd: cmd, ptm: ptm, lines: bufio.NewScanner(stderr)}
}

// press sends Ctrl-A s and returns the snapshot's line.
func (v *keyedVM) press() string {
	v.t.Helper()
	if _, err := v.ptm.Write([]byte{0x01, 's'}); err != nil {
		v.t.Fatal(err)
	}
	for v.lines.Scan() {
		l := strings.TrimSpace(v.lines.Text())
		v.log.WriteString(l + "\n")
		if strings.HasPrefix(l, "smolvmm: snapshot ") || strings.HasPrefix(l, "smolvmm: C-a s: ") {
			return l
		}
	}
	v.t.Fatalf("smolvmm ended; stderr:\n%s", v.log.String())
	return ""
}

// quit sends Ctrl-A x and checks that smolvmm ends with status 130.
func (v *keyedVM) quit() {
	v.t.Helper()
	if _, err := v.ptm.Write([]byte{0x01, 'x'}); err != nil {
		v.t.Fatal(err)
	}
	for v.lines.Scan() {
		v.log.WriteString(v.lines.Text() + "\n")
	}
	err := v.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		v.t.Fatalf("exit: %v, want status 130; stderr:\n%s", err, v.log.String())
	}
}
