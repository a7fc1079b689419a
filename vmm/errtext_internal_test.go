package vmm

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
)

// TestNICOfRefusal: a snapshot's network card address that is no Ethernet
// address is refused as corrupt, saying what is wrong with it: the parse
// error for text that is no address, the length for an address of
// another kind (an 8-byte EUI-64 parses without error), never "(<nil>)".
func TestNICOfRefusal(t *testing.T) {
	for _, tt := range []struct {
		name, mac string
		want      string // in the error; "" for none
	}{
		{"Ethernet", "02:00:00:00:00:01", ""},
		{"not an address", "02:00:00:00:00", "invalid MAC address"},
		{"EUI-64", "00:00:5e:10:00:00:00:01", "8 bytes, not an Ethernet address's 6"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &machineState{Virtio: []virtio.TransportState{{Type: virtio.TypeNet}}, MACs: []string{tt.mac}}
			nic, err := nicOf(st)
			if tt.want == "" {
				if err != nil || !nic.Present {
					t.Fatalf("nicOf = %+v, %v, want a card and no error", nic, err)
				}
				return
			}
			if err == nil || !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), tt.mac) || strings.Contains(err.Error(), "<nil>") {
				t.Fatalf("nicOf = %v, want ErrCorrupt naming %q and saying %q", err, tt.mac, tt.want)
			}
		})
	}
}

// TestTSCReadBack: after KVM_SET_TSC_KHZ, a rate read back that differs
// and a read that fails are refused each for what it is: the rate KVM
// set, or the read's error, never a rate of 0 kHz made up for a failed
// read nor "(<nil>)" for a plain mismatch.
func TestTSCReadBack(t *testing.T) {
	const want, have = 2_000_000, 3_000_000
	for _, tt := range []struct {
		name    string
		got     uint64
		err     error
		want    string // in the error; "" for none
		notWant []string
	}{
		{"set", want, nil, "", nil},
		{"another rate", 2_500_000, nil, "KVM set 2500000 kHz instead", []string{"<nil>"}},
		{"read fails", 0, syscall.EIO, "could not read back the rate set: " + syscall.EIO.Error(), []string{"set 0 kHz", "<nil>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tscReadBack(want, have, tt.got, tt.err)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrTSCFrequency) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("tscReadBack = %v, want ErrTSCFrequency saying %q", err, tt.want)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("tscReadBack = %v, does not wrap %v", err, tt.err)
			}
			for _, s := range tt.notWant {
				if strings.Contains(err.Error(), s) {
					t.Errorf("tscReadBack = %v, says %q", err, s)
				}
			}
		})
	}
}
