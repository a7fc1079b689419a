package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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
			ptm, pts := openPTYPair(t) // snapshotsafe_test.go
			sh := exec.Command(bash, "--norc", "--noprofile", "--noediting", "-i")
			sh.Stdin, sh.Stdout, sh.Stderr = pts, pts, pts
			sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			sh.Env = append(os.Environ(), "PS1=$ ")
			if err := sh.Start(); err != nil {
				t.Fatal(err)
			}
			var vm int
			t.Cleanup(func() {
				if vm != 0 {
					unix.Kill(vm, unix.SIGKILL)
				}
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
			waitFor("the VM in raw mode, under the filter", func() bool {
				if kids := childrenOf(sh.Process.Pid); len(kids) == 1 { // broker_test.go
					vm = kids[0]
				}
				st, _ := os.ReadFile("/proc/" + strconv.Itoa(vm) + "/status")
				return vm != 0 && !isig() && strings.Contains(string(st), "\nSeccomp:\t2\n")
			})
			if err := unix.Kill(vm, unix.SIGTSTP); err != nil {
				t.Fatal(err)
			}
			waitFor("bash's cooked mode once the VM stopped", isig)
			ticks := func() int { return strings.Count(out.String(), tick) }
			before := ticks()
			if tc.end == nil && before >= exitAfter-3 {
				t.Fatalf("%d ticks before the stop; want fewer than %d, for the guest to end in the background", before, exitAfter-3)
			}
			// One line, read by bash before the VM runs again: typed
			// while it runs in the background, the VM may read it.
			write("bg; wait %1; echo status=$?\n")
			if tc.end != nil {
				waitFor("the VM ticking again after bg", func() bool { return ticks() >= before+3 })
				if err := tc.end(vm); err != nil {
					t.Fatal(err)
				}
			}
			status := regexp.MustCompile(`status=([0-9]+)`)
			stopped := func() bool {
				st, err := os.ReadFile("/proc/" + strconv.Itoa(vm) + "/stat")
				if err != nil {
					return false
				}
				// pid (comm) state ...
				f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
				return len(f) > 0 && f[0] == "T"
			}
			var stopSeen time.Time
			waitFor("the VM's end, as bash's wait reports it", func() bool {
				// Stopped still until bash's bg has the VM tick again.
				if ticks() > before && stopped() && stopSeen.IsZero() {
					stopSeen = time.Now()
				}
				return status.MatchString(out.String()) || !stopSeen.IsZero() && time.Since(stopSeen) > 2*time.Second
			})
			m := status.FindStringSubmatch(out.String())
			if m == nil || m[1] != strconv.Itoa(tc.status) {
				t.Fatalf("bash's wait: %q, the VM stopped: %v; want status=%d, an end, not a stop (150: SIGTTOU); the terminal showed:\n%s", m, stopped(), tc.status, out)
			}
			if !strings.Contains(out.String(), tc.stderr) {
				t.Fatalf("the terminal showed:\n%s\nwant %q in it", out, tc.stderr)
			}
			if !isig() {
				t.Fatalf("the terminal is raw after the VM ended in the background; want bash's mode left alone; the terminal showed:\n%s", out)
			}
			if tc.end == nil && ticks() < exitAfter {
				t.Fatalf("%d ticks; want %d before the guest's exit; the terminal showed:\n%s", ticks(), exitAfter, out)
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
