//go:build linux && amd64

package sandbox

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestFilterListen: bind and listen are allowed with Sockets and Listen
// (a shared network's daemon opening a VM's forwards), and trapped
// otherwise, Listen without Sockets included; socket stays IPv4 and IPv6
// TCP and UDP only, so that no Unix socket is bound (a file made).
func TestFilterListen(t *testing.T) {
	for _, tt := range []struct {
		name            string
		sockets, listen bool
		nr              int
		args            []uint64
		want            uint32
	}{
		{"bind", true, true, unix.SYS_BIND, []uint64{5}, retAllow},
		{"listen", true, true, unix.SYS_LISTEN, []uint64{5, 128}, retAllow},
		{"accept4", true, true, unix.SYS_ACCEPT4, []uint64{5}, retAllow},
		{"TCP socket", true, true, unix.SYS_SOCKET, []uint64{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, 0}, retAllow},
		{"Unix socket", true, true, unix.SYS_SOCKET, []uint64{unix.AF_UNIX, unix.SOCK_STREAM, 0}, retTrap},
		{"raw socket", true, true, unix.SYS_SOCKET, []uint64{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW}, retTrap},
		{"bind without Listen", true, false, unix.SYS_BIND, []uint64{5}, retTrap},
		{"listen without Listen", true, false, unix.SYS_LISTEN, []uint64{5, 128}, retTrap},
		{"bind with Listen alone", false, true, unix.SYS_BIND, []uint64{5}, retTrap},
		{"listen with Listen alone", false, true, unix.SYS_LISTEN, []uint64{5, 128}, retTrap},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := verdict(t, Filter{Sockets: tt.sockets, Listen: tt.listen}, auditArchX8664, tt.nr, tt.args...) // sandbox_test.go
			if got != tt.want {
				t.Errorf("verdict %#x, want %#x", got, tt.want)
			}
		})
	}
}
