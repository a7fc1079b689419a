package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConsoleEndsInBackground: a VM on a terminal stopped by a shell's
// job control and continued in the background (bg) exits with its status
// when it ends there, whether by a signal or by the guest itself: it
// leaves the terminal, the shell's meanwhile, as the shell has it. Its
// putting back of the mode it found (TCSETS from a background process
// group) had the kernel send the job SIGTTOU, which stopped it instead
// ("Stopped (tty output)") until a fg. Run by an interactive bash in a
// pseudo-terminal, under the filter; bash's wait reports the job's end,
// or its stop (128+SIGTTOU).
func TestConsoleEndsInBackground(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash, for its job control")
	}
	const exitAfter = 20 // ticks of tickExitKernel
	for _, tc := range []struct {
		name   string
		kernel func(t *testing.T) string
		end    func(vm int) error // nil: the guest ends by itself
		status int
		stderr string // in what the terminal showed
	}{
		{"SIGTERM", tickEchoKernel, func(vm int) error { return unix.Kill(vm, unix.SIGTERM) }, 130, ""},
		{"SIGQUIT", tickEchoKernel, func(vm int) error { return unix.Kill(vm, unix.SIGQUIT) }, 2, "SIGQUIT"},
		{"guest's debug exit", func(t *testing.T) string { return tickExitKernel(t, exitAfter) }, nil, 3<<1 | 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := fmt.Sprintf("%s run -k %s -m 16 --net none\n", smolvmmBin(t), tc.kernel(t))
			s := startJobShell(t, bash) // jobshell_test.go
			_, vm := s.runVM(line, false)
			if err := unix.Kill(vm, unix.SIGTSTP); err != nil {
				t.Fatal(err)
			}
			s.waitFor("bash's cooked mode once the VM stopped", s.isig)
			before := s.ticks()
			if tc.end == nil && before >= exitAfter-3 {
				t.Fatalf("%d ticks before the stop; want fewer than %d, for the guest to end in the background", before, exitAfter-3)
			}
			// One line, read by bash before the VM runs again: typed
			// while it runs in the background, the VM may read it.
			s.write("bg; wait %1; echo status=$?\n")
			if tc.end != nil {
				s.waitFor("the VM ticking again after bg", func() bool { return s.ticks() >= before+3 })
				if err := tc.end(vm); err != nil {
					t.Fatal(err)
				}
			}
			status := regexp.MustCompile(`status=([0-9]+)`)
			stopped := func() bool { return procState(vm) == "T" }
			var stopSeen time.Time
			s.waitFor("the VM's end, as bash's wait reports it", func() bool {
				// Stopped still until bash's bg has the VM tick again.
				if s.ticks() > before && stopped() && stopSeen.IsZero() {
					stopSeen = time.Now()
				}
				return status.MatchString(s.out.String()) || !stopSeen.IsZero() && time.Since(stopSeen) > 2*time.Second
			})
			m := status.FindStringSubmatch(s.out.String())
			if m == nil || m[1] != strconv.Itoa(tc.status) {
				t.Fatalf("bash's wait: %q, the VM stopped: %v; want status=%d, an end, not a stop (150: SIGTTOU); the terminal showed:\n%s", m, stopped(), tc.status, s.out)
			}
			if !strings.Contains(s.out.String(), tc.stderr) {
				t.Fatalf("the terminal showed:\n%s\nwant %q in it", s.out, tc.stderr)
			}
			if !s.isig() {
				t.Fatalf("the terminal is raw after the VM ended in the background; want bash's mode left alone; the terminal showed:\n%s", s.out)
			}
			if tc.end == nil && s.ticks() < exitAfter {
				t.Fatalf("%d ticks; want %d before the guest's exit; the terminal showed:\n%s", s.ticks(), exitAfter, s.out)
			}
		})
	}
}

// tickExitKernel is tickEchoKernel without the echo, ticking four times
// as often, which after n ticks writes 3 to the debug-exit port 0x501
// (exit status 7): a guest that ends by itself a while after it started.
func tickExitKernel(t *testing.T, n byte) string {
	t.Helper()
	return codeKernel(t, []byte{
		0x31, 0xDB, // 0: xor ebx, ebx
		0x66, 0xBA, 0xF8, 0x03, // 2: mov dx, 0x3f8
		0xB0, tick[0], 0xEE, // 6: mov al, tick; out dx, al
		0xB9, 0x00, 0x80, 0x00, 0x00, // 9: mov ecx, 0x8000
		0x66, 0xBA, 0xFD, 0x03, // 14: mov dx, 0x3fd (line status)
		0xEC,       // 18: in al, dx
		0xE2, 0xFD, // 19: loop 18
		0x43,          // 21: inc ebx
		0x83, 0xFB, n, // 22: cmp ebx, n
		0x72, 0xE7, // 25: jb 2
		0x66, 0xBA, 0x01, 0x05, // 27: mov dx, 0x501
		0xB0, 0x03, 0xEE, // 31: mov al, 3; out dx, al
		0xF4,       // 34: hlt
		0xEB, 0xFD, // 35: jmp 34
	})
}
