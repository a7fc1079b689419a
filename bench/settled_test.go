package bench

import (
	"encoding/binary"
	"os/exec"
	"testing"
)

// TestSettledGuestRAM: the guest RAM's address a process says on its
// settled socket before it settles is kept, whether the two messages come
// in one read or two, and the settled message after it is read as before.
func TestSettledGuestRAM(t *testing.T) {
	const addr = 0x7f0012345000
	at := make([]byte, guestRAMMsgLen)
	at[0] = SettledGuestRAM
	binary.LittleEndian.PutUint64(at[1:], addr)
	join := func(p ...[]byte) (b []byte) {
		for _, q := range p {
			b = append(b, q...)
		}
		return b
	}
	tests := []struct {
		name        string
		writes      [][]byte
		wantAddr    uint64
		wantSettled bool
		wantWhy     string
	}{
		{"address, then settled", [][]byte{at, {SettledReleased}}, addr, true, ""},
		{"both in one write", [][]byte{join(at, []byte{SettledReleased})}, addr, true, ""},
		{"address in two writes", [][]byte{at[:4], at[4:], {SettledReleased}}, addr, true, ""},
		{"address, then mapped", [][]byte{at, join([]byte{SettledMapped}, []byte("traced by PID 7"))}, addr, true, "traced by PID 7"},
		{"settled alone", [][]byte{{SettledReleased}}, 0, true, ""},
		{"address alone, then gone", [][]byte{at}, addr, false, ""},
		{"address cut short", [][]byte{at[:5]}, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := attachSettled(Target{SettledFlag: "--settled-fd"}, exec.Command("true"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.writes {
				if _, err := s.child.Write(w); err != nil {
					t.Fatal(err)
				}
			}
			s.started() // closes the process's end: EOF after the writes
			got := s.wait(0, nil)
			if got != tt.wantSettled || s.guestRAMAt() != tt.wantAddr || s.mappedWhy != tt.wantWhy {
				t.Errorf("settled %v, guest RAM at %#x, mapped why %q; want %v, %#x, %q", got, s.guestRAMAt(), s.mappedWhy, tt.wantSettled, tt.wantAddr, tt.wantWhy)
			}
			s.close(true)
		})
	}
	if (*settledConn)(nil).guestRAMAt() != 0 {
		t.Error("no socket: a guest RAM address")
	}
}
