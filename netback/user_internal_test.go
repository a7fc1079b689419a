package netback

import (
	"net"
	"testing"
)

// NewUser must not return before the switch reads from the guest's
// connection: only then does it deliver frames to the guest.
func TestNewUserWaitsForSwitch(t *testing.T) {
	for range 20 {
		u, err := NewUser(net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-u.conn.reading:
		default:
			t.Fatal("NewUser returned before the switch registered the guest's connection")
		}
		u.Close()
	}
}
