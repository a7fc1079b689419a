package stackguest_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

var testMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// TestNewRefuses: a configuration the IPv4-only stack cannot take (an
// IPv6 or missing address, an IPv6 gateway, a MAC of another length) is
// refused with an error naming what is wrong, not a panic.
func TestNewRefuses(t *testing.T) {
	v4 := netip.MustParsePrefix("10.0.2.15/24")
	for _, tt := range []struct {
		name string
		c    stackguest.Config
		want string // in the error; "" for none
	}{
		{"IPv4", stackguest.Config{MAC: testMAC, Addr: v4, Gateway: netip.MustParseAddr("10.0.2.2")}, ""},
		{"no gateway", stackguest.Config{MAC: testMAC, Addr: v4}, ""},
		{"IPv6 gateway", stackguest.Config{MAC: testMAC, Addr: v4, Gateway: netip.MustParseAddr("fe80::1")}, "gateway fe80::1 is not an IPv4 address"},
		{"IPv4-mapped gateway", stackguest.Config{MAC: testMAC, Addr: v4, Gateway: netip.MustParseAddr("::ffff:10.0.2.2")}, "not an IPv4 address"},
		{"IPv6 address", stackguest.Config{MAC: testMAC, Addr: netip.MustParsePrefix("fd00::2/64")}, "IPv4 address"},
		{"no address", stackguest.Config{MAC: testMAC}, "IPv4 address"},
		{"short MAC", stackguest.Config{MAC: testMAC[:4], Addr: v4}, "6-byte MAC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, err := stackguest.New(netback.NewNone(), tt.c)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				g.Close()
				return
			}
			if err == nil {
				g.Close()
				t.Fatalf("New accepted %+v", tt.c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestDialTCPRefuses: DialTCP to an address the IPv4-only stack cannot
// reach (IPv6, IPv4-mapped IPv6, the zero address) returns an error
// naming it, not a panic.
func TestDialTCPRefuses(t *testing.T) {
	g, err := stackguest.New(netback.NewNone(), stackguest.Config{MAC: testMAC, Addr: netip.MustParsePrefix("10.0.2.15/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, tt := range []struct {
		name string
		addr netip.AddrPort
	}{
		{"IPv6", netip.MustParseAddrPort("[fd00::1]:80")},
		{"IPv4-mapped", netip.MustParseAddrPort("[::ffff:10.0.2.2]:80")},
		{"zero", netip.AddrPort{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := g.DialTCP(context.Background(), tt.addr)
			if err == nil {
				c.Close()
				t.Fatalf("DialTCP(%s) connected", tt.addr)
			}
			if want := "not an IPv4 address"; !strings.Contains(err.Error(), want) {
				t.Fatalf("DialTCP(%s) = %v, want an error saying %q", tt.addr, err, want)
			}
		})
	}
}
