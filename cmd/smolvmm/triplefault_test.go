package main

import (
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestCLITripleFault: a triple fault before the guest printed anything is
// a crash, status 2, in one line naming it and the registers, with advice
// when the guest was turning paging on (what this machine's KVM does to
// NetBSD's locore); after the guest printed it is a reboot, status 0, said
// in one line without -v. Before, every triple fault ended silently with
// status 0.
func TestCLITripleFault(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "bad")
	for _, tc := range []struct {
		words   string
		verbose bool
		status  int
		want    []string // in stderr
		lines   int      // lines of stderr
	}{
		{"triplefault-silent", false, 2, []string{"smolvmm run: guest crashed: triple fault before any console output, EIP=0x",
			" CR0=0x11 CR3=0x", " CR4=0x", " EFER=0x0 (", "-v prints every register"}, 1},
		{"triplefault-silent", true, 2, []string{"registers at the triple fault:\nEAX=", "triple fault before any console output, EIP=0x"}, 0},
		// Turning paging on (CR4.PSE, CR3, then CR0): here KVM triple-
		// faults on the move to CR0; a KVM that runs paged guests gets
		// to the ud2 with paging on, and no advice about paging.
		{"triplefault-paging", false, 2, []string{"triple fault before any console output, EIP=0x", " CR4=0x10 "}, 1},
		{"triplefault", false, 0, []string{"smolvmm: guest triple-faulted (KVM_EXIT_SHUTDOWN) after console output: taken as a reset"}, 1},
	} {
		name := tc.words
		if tc.verbose {
			name += " -v"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"run", "-k", kernel, "-m", "16", "--net", "none", "-a", tc.words}
			if tc.verbose {
				args = append(args, "-v")
			}
			out, stderr, status := runCLI(t, args...)
			if status != tc.status {
				t.Fatalf("status %d, want %d; stderr:\n%s", status, tc.status, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if n := strings.Count(stderr, "\n"); tc.lines != 0 && n != tc.lines {
				t.Errorf("stderr has %d lines, want %d:\n%s", n, tc.lines, stderr)
			}
			if strings.Contains(tc.words, "silent") && out != "" {
				t.Errorf("guest output %q, want none", out)
			}
			if tc.words == "triplefault-paging" && strings.Contains(stderr, " CR0=0x11 ") != strings.Contains(stderr, "the guest died turning paging on: this host's KVM may not run paged 32-bit guests") {
				t.Errorf("advice about paging where the guest was turning it on, none where it was on:\n%s", stderr)
			}
		})
	}
}

// TestTripleFaultAdvice: the advice follows the library's facts: paging
// being turned on (to long mode, with EFER.LME) points at the host's KVM,
// anything else at the kernel; -v is offered unless given.
func TestTripleFaultAdvice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tf    vmm.TripleFaultError
		quiet bool
		want  []string
		not   []string
	}{
		{"turning paging on", vmm.TripleFaultError{CR0: 0x11, SettingPaging: true}, false,
			[]string{"turning paging on: this host's KVM may not run paged 32-bit guests", "; -v prints every register"}, []string{"long mode"}},
		{"turning paging on for long mode", vmm.TripleFaultError{CR0: 0x11, EFER: 0x100, SettingPaging: true}, true,
			[]string{"to enter long mode: this host's KVM may not run paged or 64-bit guests"}, []string{"-v"}},
		{"paging on already", vmm.TripleFaultError{CR0: 0x80010033}, false,
			[]string{"the kernel died before it printed anything"}, []string{"KVM"}},
		{"paging off", vmm.TripleFaultError{CR0: 0x11}, true,
			[]string{"the kernel died before it printed anything"}, []string{"KVM", "-v prints"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tripleFaultAdvice(&tc.tf, tc.quiet)
			for _, w := range tc.want {
				if !strings.Contains(a, w) {
					t.Errorf("advice %q lacks %q", a, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(a, w) {
					t.Errorf("advice %q has %q", a, w)
				}
			}
		})
	}
}
