package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

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
			s := startJobShell(t, bash) // jobshell_test.go
			job, vm := s.runVM(line, true)
			s.waitFor("the guest's ticks", func() bool { return s.ticks() >= 2 })
			if err := tc.stop(job, vm); err != nil {
				t.Fatal(err)
			}
			cmdAt := strings.Index(s.out.String(), "run --jail")
			s.waitFor("bash's report of the stop", func() bool { return strings.Contains(s.out.String()[cmdAt:], "Stopped") })
			// The jailed VMM stops before the process the shell waits
			// for; the kernel's stop of its threads may lag the kill.
			s.waitFor("the jailed VMM stopped", func() bool { return procState(vm) == "T" })
			before := s.ticks()
			if tc.bg && before >= exitAfter-5 {
				t.Fatalf("%d ticks before the stop; want fewer than %d, for the guest to end in the background", before, exitAfter-5)
			}
			if !tc.bg {
				s.write("fg\n")
				s.waitFor("the guest ticking again after fg", func() bool { return s.ticks() >= before+3 })
				s.waitFor("raw mode again after fg", func() bool { return !s.isig() })
				s.write("\x01x") // Ctrl-A x
				s.waitFor("the VM's end", func() bool { return procState(job) == "gone" || procState(job) == "Z" })
				s.write("echo status=$?\n")
			} else {
				// One line, read by bash before the VM runs again.
				s.write("bg; wait %1; echo status=$?\n")
			}
			status := regexp.MustCompile(`status=([0-9]+)`)
			want := 130
			if tc.bg {
				want = 3<<1 | 1
			}
			s.waitFor("bash's status of the job", func() bool { return status.MatchString(s.out.String()) })
			if m := status.FindStringSubmatch(s.out.String()); m[1] != strconv.Itoa(want) {
				t.Fatalf("bash's status %s; want %d (148-150: stopped again); the terminal showed:\n%s", m[1], want, s.out)
			}
			if !s.isig() {
				t.Fatalf("the terminal is raw after the VM's end; the terminal showed:\n%s", s.out)
			}
			if tc.bg && s.ticks() < exitAfter {
				t.Fatalf("%d ticks; want %d before the guest's exit; the terminal showed:\n%s", s.ticks(), exitAfter, s.out)
			}
		})
	}
}
