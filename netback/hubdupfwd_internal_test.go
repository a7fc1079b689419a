package netback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// A hello whose forwards name one host port twice for one protocol is
// refused by the hub itself, as a port forward refusal naming the port,
// whoever sent it (the CLI checks -p, a library client need not): before,
// the second bind decided, and the VM was told to stop "the program using
// the port" (itself). Nothing is left listening, and no VM joins. Two
// forwards that share a port number on different protocols or addresses
// are let in.
func TestHubRefusesSameHostPortTwice(t *testing.T) {
	h, err := NewHub(HubConfig{Socket: filepath.Join(testsock.Dir(t), "n.sock"), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := freePort(t)
	fwd := func(proto, addr string, guest uint16) string {
		return Forward{Proto: proto, HostAddr: netip.MustParseAddr(addr), HostPort: p, GuestPort: guest}.String()
	}
	tests := []struct {
		name    string
		fwds    []string
		refused string // what the refusal names; "" when let in
	}{
		{"same address", []string{fwd("tcp", "127.0.0.1", 80), fwd("tcp", "127.0.0.1", 81)}, fmt.Sprintf("host port given twice: tcp %d", p)},
		{"all addresses, then one", []string{fwd("tcp", "0.0.0.0", 80), fwd("tcp", "127.0.0.1", 81)}, fmt.Sprintf("host port given twice: tcp %d", p)},
		{"one address, then all IPv6 ones", []string{fwd("udp", "127.0.0.1", 53), fwd("udp", "::", 54)}, fmt.Sprintf("host port given twice: udp %d", p)},
		{"the same forward twice", []string{fwd("tcp", "127.0.0.1", 80), fwd("tcp", "127.0.0.1", 80)}, fmt.Sprintf("host port given twice: tcp %d", p)},
		{"tcp and udp", []string{fwd("tcp", "127.0.0.1", 80), fwd("udp", "127.0.0.1", 80)}, ""},
		{"two addresses", []string{fwd("tcp", "127.0.0.1", 80), fwd("tcp", "127.0.0.2", 81)}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", h.Socket())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			hello := hubHello{MAC: fmt.Sprintf("52:54:00:00:01:%02x", i+1), Forwards: tt.fwds}
			var ans hubAnswer
			err = writeHubMessage(c, 0, hello)
			var status byte
			if err == nil {
				_, status, err = readHubMessage(c, &ans)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.refused == "" {
				if status != 0 {
					t.Fatalf("refused (%s): %s", Refusal(status), ans.Error)
				}
				c.Close()
				// Gone before the next join binds the port again.
				waitVMsGone(t, h)
				return
			}
			if Refusal(status) != RefusedForward || !strings.Contains(ans.Error, tt.refused) {
				t.Errorf("status %d (%s), %q; want a port forward refusal saying %q", status, Refusal(status), ans.Error, tt.refused)
			}
			if n := h.Stats().VMs; n != 0 {
				t.Errorf("%d VMs joined", n)
			}
			// Nothing of the refused join listens on the port.
			addr := fmt.Sprintf("127.0.0.1:%d", p)
			if ln, err := net.Listen("tcp", addr); err != nil {
				t.Errorf("tcp %s after the refusal: %v", addr, err)
			} else {
				ln.Close()
			}
			if pc, err := net.ListenPacket("udp", addr); err != nil {
				t.Errorf("udp %s after the refusal: %v", addr, err)
			} else {
				pc.Close()
			}
		})
	}
}

// Join and NewUser refuse forwards naming one host port twice before they
// connect or bind anything.
func TestJoinSameHostPortTwice(t *testing.T) {
	fwds := []Forward{
		{Proto: "tcp", HostAddr: DefaultForwardAddr, HostPort: 18080, GuestPort: 80},
		{Proto: "tcp", HostAddr: DefaultForwardAddr, HostPort: 18080, GuestPort: 81},
	}
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 1, 1}
	// Nothing listens there: the check comes first.
	if _, err := Join(filepath.Join(testsock.Dir(t), "none.sock"), mac, fwds); !errors.Is(err, ErrSameHostPort) || !strings.Contains(err.Error(), "tcp 18080") {
		t.Errorf("Join: %v, want ErrSameHostPort naming tcp 18080", err)
	}
	if u, err := NewUser(mac, fwds); !errors.Is(err, ErrSameHostPort) || !strings.Contains(err.Error(), "tcp 18080") {
		if u != nil {
			u.Close()
		}
		t.Errorf("NewUser: %v, want ErrSameHostPort naming tcp 18080", err)
	}
}
