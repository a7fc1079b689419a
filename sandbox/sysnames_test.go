//go:build linux && amd64

package sandbox

//go:generate go run gensysnames.go

import (
	"testing"
	"unsafe"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// The generated table names every call arch names, and nothing else: a
// newer go-seccomp-bpf with new calls needs go generate ./sandbox.
func TestSyscallNames(t *testing.T) {
	for nr, name := range arch.X86_64.SyscallNumbers {
		if nr >= len(syscallNames) || syscallNames[nr] != name {
			t.Errorf("system call %d is %q in arch, not in syscallNames (run go generate ./sandbox)", nr, name)
		}
	}
	for nr, name := range syscallNames {
		if name != "" && arch.X86_64.SyscallNumbers[nr] != name {
			t.Errorf("syscallNames[%d] = %q, arch says %q", nr, name, arch.X86_64.SyscallNumbers[nr])
		}
	}
	if len(syscallNames) > trapSlots {
		t.Errorf("%d names, more than the %d trap slots", len(syscallNames), trapSlots)
	}
	// The message the handler writes names the call and its number.
	d := prepareTrap(Filter{})
	msg := func(nr int) string {
		m := d.table[nr]
		return string(unsafe.Slice(m.p, m.n))
	}
	for nr, want := range map[int]string{257: "openat (system call 257)", 59: "execve (system call 59)", 400: "system call 400", trapSlots: "system call numbered 512 or more"} {
		if got := msg(nr); got != want {
			t.Errorf("trap message for %d: %q, want %q", nr, got, want)
		}
	}
	// Other ABIs' calls: the handler adds the number.
	for _, m := range []struct {
		got  trapMsg
		want string
	}{{d.i386, "32-bit (int 0x80) system call "}, {d.x32, "x32 system call "}} {
		if got := string(unsafe.Slice(m.got.p, m.got.n)); got != m.want {
			t.Errorf("trap message for another ABI: %q, want %q", got, m.want)
		}
	}
}
