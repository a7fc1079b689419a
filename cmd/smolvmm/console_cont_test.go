package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConsoleRawAfterContinue: a VM on a terminal stopped and continued
// by a shell's job control (kill -TSTP, then bg, then fg) sets raw mode
// again when continued in the foreground, so that Ctrl-C still goes to
// the guest: the console stayed in the shell's cooked mode after fg, and
// Ctrl-C killed the VMM ("guest stopped", status 130). Continued in the
// background (bg) it leaves the shell's mode alone and keeps running,
// and sets raw mode when fg then brings it to the foreground, which sends
// a running job no signal. Run by an interactive bash in a
// pseudo-terminal, under the filter. Each check follows an event: the
// guest's ticks after bg (a VM that set raw mode in the background is
// stopped by SIGTTOU, and ticks no more), its echo of Ctrl-C after fg.
func TestConsoleRawAfterContinue(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash, for its job control")
	}
	line := fmt.Sprintf("%s run -k %s -m 16 --net none\n", smolvmmBin(t), tickEchoKernel(t))
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
	ticks := func() int { return strings.Count(out.String(), tick) }
	before := ticks()
	write("bg\n")
	waitFor("the VM ticking again after bg", func() bool { return ticks() >= before+3 })
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
	if strings.Contains(out.String(), "\x03") {
		t.Fatalf("a Ctrl-C before it was typed; the terminal showed:\n%q", out)
	}
	write("\x03") // Ctrl-C: the guest's, not a signal
	waitFor("the guest's echo of Ctrl-C", func() bool { return strings.Contains(out.String(), "\x03") })
	if st := state(); st == "gone" || st == "Z" || strings.Contains(out.String(), "guest stopped") {
		t.Fatalf("Ctrl-C after fg ended the VM; the terminal showed:\n%s", out)
	}
	unix.Kill(vm, unix.SIGKILL)
}

// tick is what tickEchoKernel writes every so often.
const tick = "*"

// tickEchoKernel writes an a.out-kludge multiboot kernel that echoes what
// COM1 receives and writes tick once every 0x20000 looks at its line
// status (a fraction of a second): a guest that shows it runs, and what
// reaches it.
func tickEchoKernel(t *testing.T) string {
	t.Helper()
	return codeKernel(t, []byte{
		0x66, 0xBA, 0xF8, 0x03, // 0: mov dx, 0x3f8
		0xB0, tick[0], 0xEE, // 4: mov al, tick; out dx, al
		0xB9, 0x00, 0x00, 0x02, 0x00, // 7: mov ecx, 0x20000
		0x66, 0xBA, 0xFD, 0x03, // 12: mov dx, 0x3fd (line status)
		0xEC, 0xA8, 0x01, // 16: in al, dx; test al, 1 (data ready)
		0x74, 0x06, // 19: jz 27
		0xB2, 0xF8, 0xEC, 0xEE, // 21: mov dl, 0xf8; in al, dx; out dx, al
		0xEB, 0xF1, // 25: jmp 12
		0xE2, 0xEF, // 27: loop 12
		0xEB, 0xE1, // 29: jmp 0
	})
}
