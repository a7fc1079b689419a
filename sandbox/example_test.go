//go:build linux && amd64

package sandbox_test

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/vmm"
)

// call is a system call as the kernel hands it to the filter (struct
// seccomp_data), laid out for x/net/bpf's VM, which loads 32-bit words
// big-endian where the kernel loads them in the host's order.
func call(nr int, args ...uint64) []byte {
	b := make([]byte, 64)
	be := binary.BigEndian
	be.PutUint32(b[0:], uint32(nr))
	be.PutUint32(b[4:], 0xC000003E) // AUDIT_ARCH_X86_64
	for i, a := range args {
		be.PutUint32(b[16+8*i:], uint32(a))
		be.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

// A VMM allows the KVM requests it makes while running and, with a user
// network, IPv4 and IPv6 sockets; everything else, a new program or a raw
// socket included, is trapped. Install loads this program; here it runs
// in a BPF interpreter instead, so that nothing is filtered.
func ExampleFilter_Program() {
	kvmRun := vmm.RunIoctls()[0]
	for _, f := range []sandbox.Filter{
		{Ioctls: vmm.RunIoctls()},
		{Ioctls: vmm.RunIoctls(), Sockets: true},
	} {
		insts, err := f.Program()
		if err != nil {
			fmt.Println(err)
			return
		}
		vm, _ := bpf.NewVM(insts)
		verdict := func(what string, data []byte) {
			v, _ := vm.Run(data)
			switch uint32(v) {
			case unix.SECCOMP_RET_ALLOW:
				fmt.Printf("  %s: allowed\n", what)
			case unix.SECCOMP_RET_TRAP:
				fmt.Printf("  %s: trapped\n", what)
			default:
				fmt.Printf("  %s: %#x\n", what, v)
			}
		}
		fmt.Println("Sockets:", f.Sockets)
		verdict("ioctl(vcpu, KVM_RUN)", call(unix.SYS_IOCTL, 9, kvmRun))
		verdict("ioctl(tty, TIOCSTI)", call(unix.SYS_IOCTL, 0, unix.TIOCSTI))
		verdict("execve", call(unix.SYS_EXECVE))
		verdict("socket(AF_INET, SOCK_STREAM)", call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0))
		verdict("socket(AF_PACKET, SOCK_RAW)", call(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW, 0))
	}
	// Output:
	// Sockets: false
	//   ioctl(vcpu, KVM_RUN): allowed
	//   ioctl(tty, TIOCSTI): trapped
	//   execve: trapped
	//   socket(AF_INET, SOCK_STREAM): trapped
	//   socket(AF_PACKET, SOCK_RAW): trapped
	// Sockets: true
	//   ioctl(vcpu, KVM_RUN): allowed
	//   ioctl(tty, TIOCSTI): trapped
	//   execve: trapped
	//   socket(AF_INET, SOCK_STREAM): allowed
	//   socket(AF_PACKET, SOCK_RAW): trapped
}

// DropPrivileges refuses, before any system call, credentials it cannot
// give exactly: root's, and ids the kernel would cut to 32 bits.
func ExampleDropPrivileges() {
	fmt.Println(sandbox.DropPrivileges(sandbox.Credentials{UID: 0, GID: 0}))
	fmt.Println(sandbox.DropPrivileges(sandbox.Credentials{UID: sandbox.MaxID + 2, GID: 100}))
	// Output:
	// drop privileges to uid 0, gid 0: give a user other than root
	// drop privileges to uid 4294967296, gid 100: uid 4294967296 is out of range: ids go from 0 to 4294967294 (4294967295 means "unchanged" to the kernel)
}
