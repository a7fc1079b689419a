package net

import (
	"errors"
	"fmt"
	stdnet "net"
	"strings"
	"testing"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "52:54:00:12:34:56", want: "52:54:00:12:34:56"},
		{in: "52-54-00-AB-CD-EF", want: "52:54:00:ab:cd:ef"},
		{in: "02:00:00:00:00:01", want: "02:00:00:00:00:01"},
		{in: "", err: "not six hex bytes separated by ':' or '-'"},
		{in: "52:54:00:12:34", err: "not six hex bytes"},
		{in: "52:54:00:12:34:5g", err: "not six hex bytes"},
		{in: "00:00:5e:00:53:01:02:03", err: "8 bytes"},
		{in: "01:00:5e:00:00:01", err: "multicast"},
		{in: "ff:ff:ff:ff:ff:ff", err: "multicast"},
		{in: "00:00:00:00:00:00", err: "all-zero"},
	}
	for _, tc := range tests {
		got, err := ParseMAC(tc.in)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrBadMAC) || !strings.Contains(err.Error(), tc.err) ||
				!strings.Contains(err.Error(), "52:54:00:12:34:56") || strings.Count(err.Error(), "MAC address") != 1 {
				t.Errorf("ParseMAC(%q) = %v, %v; want ErrBadMAC saying %q and showing an example", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseMAC(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestDefaultMAC(t *testing.T) {
	a, b := DefaultMAC("/vm/a.img"), DefaultMAC("/vm/b.img")
	if a.String() != DefaultMAC("/vm/a.img").String() {
		t.Error("DefaultMAC is not stable")
	}
	if a.String() == b.String() {
		t.Errorf("two seeds give the same MAC %s", a)
	}
	for _, m := range []string{a.String(), b.String()} {
		if !strings.HasPrefix(m, "52:54:00:") {
			t.Errorf("DefaultMAC %s: want prefix 52:54:00", m)
		}
		if _, err := ParseMAC(m); err != nil {
			t.Errorf("DefaultMAC %s does not parse back: %v", m, err)
		}
	}
}

func ExampleDefaultMAC() {
	fmt.Println(DefaultMAC("/var/lib/smolvmm/web.img"))
	_, err := ParseMAC("01:00:5e:00:00:01")
	fmt.Println(err)
	// Output:
	// 52:54:00:5e:52:84
	// bad MAC address "01:00:5e:00:00:01": a multicast address (lowest bit of the first byte set) cannot be a NIC's; a NIC's address looks like 52:54:00:12:34:56
}

// TestWriteConfigMAC: the driver's writes change the card's address only
// into a NIC's: an all-zero or multicast address is not taken (the card
// keeps, and the driver reads back, its last one), so a snapshot never
// records an address that reads back as none; any NIC address is reached
// byte by byte (as vioif writes) whatever it passes through on the way.
func TestWriteConfigMAC(t *testing.T) {
	tests := []struct {
		name   string
		from   string   // the card's address before
		writes []string // each written whole (6 bytes at once), or byte by byte with "bytes:" first
		want   string
	}{
		{"a NIC's address", "52:54:00:ab:cd:ef", []string{"02:11:22:33:44:55"}, "02:11:22:33:44:55"},
		{"all zero", "52:54:00:ab:cd:ef", []string{"00:00:00:00:00:00"}, "52:54:00:ab:cd:ef"},
		{"all zero, byte by byte", "52:54:00:ab:cd:ef", []string{"bytes:00:00:00:00:00:00"}, "00:00:00:00:00:ef"},
		{"multicast", "52:54:00:ab:cd:ef", []string{"01:00:5e:00:00:01"}, "52:54:00:ab:cd:ef"},
		{"broadcast, byte by byte", "52:54:00:ab:cd:ef", []string{"bytes:ff:ff:ff:ff:ff:ff"}, "52:54:00:ab:cd:ef"},
		{"through all zero, byte by byte", "02:00:00:00:00:00", []string{"bytes:00:00:00:00:00:07"}, "00:00:00:00:00:07"},
		{"through multicast, byte by byte", "02:00:00:00:00:01", []string{"bytes:03:00:00:00:00:02", "bytes:04:00:00:00:00:03"}, "04:00:00:00:00:03"},
		{"refused, then a NIC's", "52:54:00:ab:cd:ef", []string{"00:00:00:00:00:00", "52:54:00:00:00:09"}, "52:54:00:00:00:09"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, err := ParseMAC(tc.from)
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(newFakeBackend(), from)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, w := range tc.writes {
				s, bytewise := strings.CutPrefix(w, "bytes:")
				mac, err := stdnet.ParseMAC(s)
				if err != nil {
					t.Fatal(err)
				}
				if !bytewise {
					d.WriteConfig(0, mac)
					continue
				}
				for i, b := range mac {
					d.WriteConfig(i, []byte{b})
				}
			}
			var cfg [6]byte
			d.ReadConfig(0, cfg[:])
			if got := d.MAC().String(); got != tc.want || stdnet.HardwareAddr(cfg[:]).String() != tc.want {
				t.Errorf("card's address %s, driver reads %s; want %s", got, stdnet.HardwareAddr(cfg[:]), tc.want)
			}
		})
	}
}

// TestNewRefusesNonNICAddress: a card cannot be made with an address a
// card could not take from its driver.
func TestNewRefusesNonNICAddress(t *testing.T) {
	for _, tc := range []struct {
		mac  stdnet.HardwareAddr
		want string
	}{
		{stdnet.HardwareAddr{0, 0, 0, 0, 0, 0}, "all-zero"},
		{stdnet.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, "multicast"},
		{stdnet.HardwareAddr{0x52, 0x54}, "2 bytes"},
		{nil, "0 bytes"},
	} {
		d, err := New(newFakeBackend(), tc.mac)
		if err == nil {
			d.Close()
		}
		if !errors.Is(err, ErrBadMAC) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q) = %v; want ErrBadMAC saying %q", tc.mac, err, tc.want)
		}
	}
}
