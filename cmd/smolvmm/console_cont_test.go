package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guests"
)

// TestConsoleRawAfterContinue: a VM on a terminal stopped and continued
// by a shell's job control (kill -TSTP, then bg, then fg) sets raw mode
// again when continued in the foreground, so that Ctrl-C still goes to
// the guest: the console stayed in the shell's cooked mode after fg, and
// Ctrl-C killed the VMM ("guest stopped", status 130). Continued in the
// background (bg) it leaves the shell's mode alone and keeps running,
// and sets raw mode when fg then brings it to the foreground, which sends
// a running job no signal. Run by an interactive bash in a
// pseudo-terminal, under the filter.
func TestConsoleRawAfterContinue(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash, for its job control")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("%s run -k %s -m 16 --net none -d %s -a hang\n", smolvmmBin(t), guests.ForTest(t, "vblk"), img)
	ptm, pts := openPTYPair(t) // snapshotsafe_test.go
	sh := exec.Command(bash, "--norc", "--noprofile", "--noediting", "-i")
	sh.Stdin, sh.Stdout, sh.Stderr = pts, pts, pts
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	sh.Env = append(os.Environ(), "PS1=$ ")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sh.Process.Kill()
		sh.Wait()
	})
	out := new(lockedBuffer) // contain_test.go
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	write := func(s string) {
		if _, err := ptm.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	isig := func() bool { return termiosOf(t, pts).Lflag&unix.ISIG != 0 }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out; the terminal showed:\n%s", what, out)
			}
		}
	}
	waitFor("bash's prompt", func() bool { return strings.Contains(out.String(), "$ ") })
	write(line)
	var vm int
	waitFor("the VM in raw mode, under the filter", func() bool {
		if kids := childrenOf(sh.Process.Pid); len(kids) == 1 { // broker_test.go
			vm = kids[0]
		}
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(vm) + "/status")
		return vm != 0 && !isig() && strings.Contains(string(st), "\nSeccomp:\t2\n")
	})
	state := func() string {
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(vm) + "/status")
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "State:"); ok {
				return strings.Fields(v)[0]
			}
		}
		return "gone"
	}
	if err := unix.Kill(vm, unix.SIGTSTP); err != nil {
		t.Fatal(err)
	}
	waitFor("bash's cooked mode once the VM stopped", isig)
	write("bg\n")
	waitFor("the VM continued by bg", func() bool { return state() != "T" })
	time.Sleep(300 * time.Millisecond) // its SIGCONT's handling
	if st := state(); !isig() || st == "T" || st == "gone" {
		t.Fatalf("after bg: the terminal's ISIG %v, the VM's state %s; want bash's mode left alone (ISIG on) and the VM running; the terminal showed:\n%s", isig(), st, out)
	}
	// Typed while it runs in the background, fg may be read by the VM
	// first: the kernel stops it (SIGTTIN) and bash reports it stopped
	// instead, as for a user, who types fg again.
	write("fg\n")
	last := time.Now()
	waitFor("raw mode again after fg", func() bool {
		if state() == "T" && time.Since(last) > time.Second {
			write("fg\n")
			last = time.Now()
		}
		return !isig()
	})
	write("\x03") // Ctrl-C: the guest's, not a signal
	time.Sleep(500 * time.Millisecond)
	if st := state(); st == "gone" || st == "Z" || strings.Contains(out.String(), "guest stopped") {
		t.Fatalf("Ctrl-C after fg ended the VM; the terminal showed:\n%s", out)
	}
	unix.Kill(vm, unix.SIGKILL)
}
