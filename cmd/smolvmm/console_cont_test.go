package main

import (
	"fmt"
	"os/exec"
	"strings"
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
	s := startJobShell(t, bash) // jobshell_test.go
	_, vm := s.runVM(line, false)
	if err := unix.Kill(vm, unix.SIGTSTP); err != nil {
		t.Fatal(err)
	}
	s.waitFor("bash's cooked mode once the VM stopped", s.isig)
	before := s.ticks()
	s.write("bg\n")
	s.waitFor("the VM ticking again after bg", func() bool { return s.ticks() >= before+3 })
	if st := procState(vm); !s.isig() || st == "T" || st == "gone" {
		t.Fatalf("after bg: the terminal's ISIG %v, the VM's state %s; want bash's mode left alone (ISIG on) and the VM running; the terminal showed:\n%s", s.isig(), st, s.out)
	}
	// Typed while it runs in the background, fg may be read by the VM
	// first: the kernel stops it (SIGTTIN) and bash reports it stopped
	// instead, as for a user, who types fg again.
	s.write("fg\n")
	last := time.Now()
	s.waitFor("raw mode again after fg", func() bool {
		if procState(vm) == "T" && time.Since(last) > time.Second {
			s.write("fg\n")
			last = time.Now()
		}
		return !s.isig()
	})
	if strings.Contains(s.out.String(), "\x03") {
		t.Fatalf("a Ctrl-C before it was typed; the terminal showed:\n%q", s.out)
	}
	s.write("\x03") // Ctrl-C: the guest's, not a signal
	s.waitFor("the guest's echo of Ctrl-C", func() bool { return strings.Contains(s.out.String(), "\x03") })
	if st := procState(vm); st == "gone" || st == "Z" || strings.Contains(s.out.String(), "guest stopped") {
		t.Fatalf("Ctrl-C after fg ended the VM; the terminal showed:\n%s", s.out)
	}
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
