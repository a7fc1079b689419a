package vmm

import (
	"bytes"
	"testing"
	"time"
)

// guestReadingUART is an inputUART whose guest reads a byte in the very
// instant the pump fills it: the race the pump's overrun must not lose.
type guestReadingUART struct {
	limit   int
	rx      []byte // in the receiver
	read    []byte // read by the guest
	overrun int    // Overrun calls
}

func (u *guestReadingUART) RXSpace() int { return u.limit - len(u.rx) }

func (u *guestReadingUART) RXWait(func()) (int, time.Duration) {
	if n := u.RXSpace(); n > 0 {
		return n, 0
	}
	return 0, -1
}

func (u *guestReadingUART) Offer(p []byte) int {
	n := min(len(p), u.RXSpace())
	u.rx = append(u.rx, p[:n]...)
	if len(u.rx) == u.limit {
		u.read, u.rx = append(u.read, u.rx[0]), u.rx[1:]
	}
	return n
}

func (u *guestReadingUART) Overrun() { u.overrun++ }

func (u *guestReadingUART) CharTime() time.Duration { return 0 }

// TestInputTerminalOverrunKeepsOrder: keys from a terminal past what the
// pump holds are dropped as an overrun that the UART reports (LSR OE),
// and no key of theirs goes to the guest, even when the guest has just
// read a byte of a UART the pump filled: the guest gets what it was sent
// in order, a prefix of what was typed, where a key dropped went in
// ahead of the held ones.
func TestInputTerminalOverrunKeepsOrder(t *testing.T) {
	tests := []struct {
		name        string
		typed       int
		wantOverrun int
	}{
		{"past the hold", 16 + inputHoldLimit + 10, 1},
		{"one past the hold", 16 + inputHoldLimit + 2, 1},
		{"within the hold", 16 + inputHoldLimit - 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typed := make([]byte, tt.typed)
			for i := range typed {
				typed[i] = byte(i % 251) // a byte out of order shows
			}
			u := &guestReadingUART{limit: 16}
			p := &inputPump{uart: u}
			p.mu.Lock()
			p.hold(typed)
			p.mu.Unlock()
			got := append(append(append([]byte(nil), u.read...), u.rx...), p.held...)
			if !bytes.Equal(got, typed[:len(got)]) {
				t.Errorf("the guest's %d bytes, those in the UART and those held (%d in all) are not what was typed, in order", len(u.read)+len(u.rx), len(got))
			}
			if len(p.held) > inputHoldLimit {
				t.Errorf("%d bytes held, want at most %d", len(p.held), inputHoldLimit)
			}
			if u.overrun != tt.wantOverrun {
				t.Errorf("Overrun called %d times, want %d", u.overrun, tt.wantOverrun)
			}
		})
	}
}
