package nestedkvm_test

import (
	"debug/elf"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/nestedkvm"
)

// TestRig proves the rig in one boot: smolvmm's built-in demo guest runs
// on the nested /dev/kvm, prints its known lines and ends with status 0; a
// test's file is in place; a failing command's stdout, stderr and status
// come back as its step's. (TestPagedGuests runs what this machine's own
// KVM cannot.)
func TestRig(t *testing.T) {
	r := nestedkvm.Run(t, nestedkvm.Job{
		Files: []nestedkvm.File{
			{Path: "/root/greeting", Data: []byte("hello from the rig\n"), Mode: 0o644},
		},
		Script: nestedkvm.Step("demo", "smolvmm", "demo", "-a", "nested rig") +
			nestedkvm.Step("file", "cat", "/root/greeting") +
			nestedkvm.Step("fails", "sh", "-c", "echo out; echo err >&2; exit 3") +
			"exit 7\n",
	})
	t.Logf("guest uptime: /init %v, /dev/kvm %v, end %v; wall: /init %v, end %v; %d attempt(s)",
		r.Init, r.KVMReady, r.End, r.InitWall, r.Wall, r.Attempts)
	if r.Status != 7 {
		t.Errorf("script status %d, want 7", r.Status)
	}

	demo := r.Step(t, "demo")
	t.Logf("demo step: %v of guest time", demo.Elapsed)
	if demo.Status != 0 {
		t.Errorf("smolvmm demo status %d, want 0; stderr:\n%s", demo.Status, demo.Stderr)
	}
	if !strings.HasPrefix(demo.Stdout, "smolvmm-demo: hello\r\n") {
		t.Errorf("demo output does not start with its first line (rig noise?):\n%q", demo.Stdout)
	}
	wantAll(t, "demo", demo.Stdout,
		"eax: 0x2badb002 ok\r\n",
		"cmdline: \"demo nested rig\"\r\n",
		"loader: \"smolvmm\"\r\n",
		"bss: zero ok\r\n",
		guests.DemoDone+"\r\n")

	if got := r.Step(t, "file"); got.Stdout != "hello from the rig\n" || got.Status != 0 {
		t.Errorf("file step: %+v, want the file's bytes and status 0", got)
	}
	if got := r.Step(t, "fails"); got.Stdout != "out\n" || got.Stderr != "err\n" || got.Status != 3 {
		t.Errorf("fails step: %+v, want stdout \"out\\n\", stderr \"err\\n\", status 3", got)
	}
}

func wantAll(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s output lacks %q:\n%s", what, w, out)
		}
	}
}

// TestIngredients checks the Debian packages the rig is built from (.ci/run
// runs it first, to download them): the kernel is an x86-64 ELF (the PVH
// image) or a bzImage, the modules are relocatable x86-64 ELF objects, and
// busybox is a static x86-64 program.
func TestIngredients(t *testing.T) {
	ing := nestedkvm.Fetch(t)
	t.Logf("packages: %s; kernel %s", ing.Packages, ing.Kernel)
	if f, err := elf.Open(ing.Kernel); err == nil {
		if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
			t.Errorf("kernel %s: %v %v, want an x86-64 executable", ing.Kernel, f.Machine, f.Type)
		}
		f.Close()
	} else if !strings.Contains(ing.Kernel, "vmlinuz") {
		t.Errorf("kernel %s: neither an ELF image nor the package's bzImage: %v", ing.Kernel, err)
	}
	if len(ing.Modules) != len(nestedkvm.Modules) {
		t.Fatalf("%d modules, want %d", len(ing.Modules), len(nestedkvm.Modules))
	}
	for i, m := range ing.Modules {
		f, err := elf.Open(m)
		if err != nil {
			t.Errorf("module %s: %v", nestedkvm.Modules[i], err)
			continue
		}
		if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_REL || f.Section(".modinfo") == nil {
			t.Errorf("module %s: %v %v, want an x86-64 kernel module (ET_REL with .modinfo)", m, f.Machine, f.Type)
		}
		f.Close()
	}
	f, err := elf.Open(ing.Busybox)
	if err != nil {
		t.Fatalf("busybox: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("busybox %s: %v, want x86-64", ing.Busybox, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("busybox %s has an interpreter: not static", ing.Busybox)
		}
	}
}
