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

// TestJailJobControl: a --jail VM on a terminal, stopped by a shell's job
// control, stops, VMM and all, and runs again when continued. The jailed
// VMM is PID 1 of its PID namespace, which the kernel sends no SIGTSTP,
// SIGTTIN or SIGTTOU it does not handle: only the process waiting for it
// outside stopped, so that the shell said "Stopped" while the guest went
// on writing to the terminal and the VMM read the lines typed at the
// shell's prompt. Brought back by fg, the console is raw again (Ctrl-A x
// ends the VM, 130); continued by bg, a guest that ends by itself there
// ends the job with its status, not a stop (150: SIGTTOU, the terminal
// put back from the background). The stop is sent as the terminal sends
// Ctrl-Z, or bash's kill -TSTP %1, to the job's process group (in raw
// mode a typed Ctrl-Z is the guest's), or to the smolvmm the shell
// started. Run by an interactive bash in a pseudo-terminal.
func TestJailJobControl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--jail needs root")
	}
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash, for its job control")
	}
	const exitAfter = 30 // ticks of tickExitKernel
	group := func(job, _ int) error { return unix.Kill(-job, unix.SIGTSTP) }
	parent := func(job, _ int) error { return unix.Kill(job, unix.SIGTSTP) }
	for _, tc := range []struct {
		name string
		stop func(job, vm int) error
		bg   bool // continued by bg, the guest ending by itself; else fg, then Ctrl-A x
	}{
		{"group stopped, fg", group, false},
		{"smolvmm stopped, fg", parent, false},
		{"group stopped, bg, guest's exit", group, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kernel := tickEchoKernel(t)
			if tc.bg {
				kernel = tickExitKernel(t, exitAfter)
			}
			line := fmt.Sprintf("%s run --jail --net none -k %s -m 16\n", smolvmmBin(t), kernel)
			ptm, pts := openPTYPair(t) // snapshotsafe_test.go
			sh := exec.Command(bash, "--norc", "--noprofile", "--noediting", "-i")
			sh.Stdin, sh.Stdout, sh.Stderr = pts, pts, pts
			sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			sh.Env = append(os.Environ(), "PS1=$ ")
			if err := sh.Start(); err != nil {
				t.Fatal(err)
			}
			var job, vm int
			t.Cleanup(func() {
				for _, p := range []int{vm, job} {
					if p != 0 {
						unix.Kill(p, unix.SIGKILL)
					}
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
			state := func(pid int) string {
				st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				if err != nil {
					return "gone"
				}
				// pid (comm) state ...
				f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
				if len(f) == 0 {
					return "gone"
				}
				return f[0]
			}
			waitFor("bash's prompt", func() bool { return strings.Contains(out.String(), "$ ") })
			write(line)
			waitFor("the jailed VM in raw mode, under the filter", func() bool {
				if kids := childrenOf(sh.Process.Pid); len(kids) == 1 { // broker_test.go
					job = kids[0]
				}
				if kids := childrenOf(job); job != 0 && len(kids) == 1 {
					vm = kids[0]
				}
				st, _ := os.ReadFile("/proc/" + strconv.Itoa(vm) + "/status")
				return vm != 0 && !isig() && strings.Contains(string(st), "\nSeccomp:\t2\n")
			})
			ticks := func() int { return strings.Count(out.String(), tick) }
			waitFor("the guest's ticks", func() bool { return ticks() >= 2 })
			if err := tc.stop(job, vm); err != nil {
				t.Fatal(err)
			}
			cmdAt := strings.Index(out.String(), "run --jail")
			waitFor("bash's report of the stop", func() bool { return strings.Contains(out.String()[cmdAt:], "Stopped") })
			// The jailed VMM stops before the process the shell waits
			// for; the kernel's stop of its threads may lag the kill.
			waitFor("the jailed VMM stopped", func() bool { return state(vm) == "T" })
			before := ticks()
			if tc.bg && before >= exitAfter-5 {
				t.Fatalf("%d ticks before the stop; want fewer than %d, for the guest to end in the background", before, exitAfter-5)
			}
			if !tc.bg {
				write("fg\n")
				waitFor("the guest ticking again after fg", func() bool { return ticks() >= before+3 })
				waitFor("raw mode again after fg", func() bool { return !isig() })
				write("\x01x") // Ctrl-A x
				waitFor("the VM's end", func() bool { return state(job) == "gone" || state(job) == "Z" })
				write("echo status=$?\n")
			} else {
				// One line, read by bash before the VM runs again.
				write("bg; wait %1; echo status=$?\n")
			}
			status := regexp.MustCompile(`status=([0-9]+)`)
			want := 130
			if tc.bg {
				want = 3<<1 | 1
			}
			waitFor("bash's status of the job", func() bool { return status.MatchString(out.String()) })
			if m := status.FindStringSubmatch(out.String()); m[1] != strconv.Itoa(want) {
				t.Fatalf("bash's status %s; want %d (148-150: stopped again); the terminal showed:\n%s", m[1], want, out)
			}
			if !isig() {
				t.Fatalf("the terminal is raw after the VM's end; the terminal showed:\n%s", out)
			}
			if tc.bg && ticks() < exitAfter {
				t.Fatalf("%d ticks; want %d before the guest's exit; the terminal showed:\n%s", ticks(), exitAfter, out)
			}
		})
	}
}
