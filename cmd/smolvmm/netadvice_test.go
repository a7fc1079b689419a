package main

import (
	"net"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
)

// netback says which network spec it cannot open, and advise says what
// --net takes, once: one piece of advice, about the flag.
func TestUnknownNetworkAdvisedOnce(t *testing.T) {
	tests := []struct {
		spec, want string
	}{
		{"tap", `network "tap": unknown network: the tap interface is not named (give the tap interface's name, as in --net tap:tap0)`},
		{"user:", `network "user:": unknown network: the shared network is not named (give the shared network's name, as in --net user:default, or --net user for a NAT of the VM's own)`},
		{"bogus", `network "bogus": unknown network (--net takes user, user:NAME, tap:NAME or none)`},
		{"none:x", `network "none:x": unknown network (--net takes user, user:NAME, tap:NAME or none)`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			b, err := netback.Open(tt.spec, nil, net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56})
			if err == nil {
				b.Close()
				t.Fatal("opened")
			}
			got := advise(err)
			if got != tt.want || strings.Count(got, "(") != 1 {
				t.Errorf("advise: %q, want %q", got, tt.want)
			}
		})
	}
}
