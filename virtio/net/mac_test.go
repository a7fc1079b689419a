package net

import (
	"errors"
	"fmt"
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
