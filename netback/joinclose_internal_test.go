package netback

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
)

// freeTCPPort is a host port nothing listens on, from testsock: below the
// ephemeral range another test's connect or listener could take it from.
func freeTCPPort(t *testing.T) int { return int(testsock.Port(t)) }

// A VM that stops (Close) and its successor that starts at once with the
// same MAC and forward: the successor is let in, every time, as Close
// returns once the hub has taken the VM out. Join's own wait for a
// duplicate MAC is off here: Close alone must do it. Before, Close
// returned as soon as it had closed its connection, and the next Join
// was refused "duplicate MAC" in about 4 runs of 10.
func TestJoinRightAfterClose(t *testing.T) {
	defer func(d time.Duration) { joinDuplicateWaitFor = d }(joinDuplicateWaitFor)
	joinDuplicateWaitFor = 0
	sock := filepath.Join(testsock.Dir(t), "n.sock")
	h, err := NewHub(HubConfig{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fw, err := ParseForward(fmt.Sprintf("%d:22", freeTCPPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x52, 0x54, 0, 9, 9, 9}
	refused := 0
	for i := 0; i < 100; i++ {
		j, err := Join(sock, mac, []Forward{fw})
		if err != nil {
			if refused++; refused <= 3 {
				t.Errorf("join %d: %v", i, err)
			}
			continue
		}
		j.Close()
		if n := h.Stats().VMs; n != 0 {
			t.Fatalf("after Close %d: the hub has %d VMs joined, want 0", i, n)
		}
	}
	if refused > 0 {
		t.Errorf("%d of 100 joins right after the last VM's Close refused", refused)
	}
}

// Join asks again, for joinDuplicateWait, while the hub says the MAC is
// connected already: a VM's previous process, killed, whose connection
// the hub has not yet seen end, is no reason to refuse its successor.
// A MAC that stays connected is refused once that time is up, after a
// few asks, not one each 20 ms: each is a line of the hub's log (smolvmm
// net's standard error), and a genuine duplicate made some 50 of them.
func TestJoinWaitsForDuplicateMAC(t *testing.T) {
	// 2.5 s, not the product's 1 s: the previous connection ends 200
	// ms in, and a loaded host's hub (-race, -cpu 1) saw its end after
	// Join's last ask, 1 s in. Its asks, 20 ms, then twice as long
	// apart each time, are 8 in 2.5 s as in 1.3 s.
	const wait = 2500 * time.Millisecond
	defer func(d time.Duration) { joinDuplicateWaitFor = d }(joinDuplicateWaitFor)
	joinDuplicateWaitFor = wait
	sock := filepath.Join(testsock.Dir(t), "n.sock")
	var logMu sync.Mutex
	refusals := 0
	h, err := NewHub(HubConfig{Socket: sock, Logf: func(format string, args ...any) {
		if strings.Contains(fmt.Sprintf(format, args...), "refused a VM") {
			logMu.Lock()
			refusals++
			logMu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mac := net.HardwareAddr{0x52, 0x54, 0, 9, 9, 7}
	tests := []struct {
		name    string
		leaveIn time.Duration // when the first connection ends; 0: never
		refused bool
		atLeast time.Duration // how long Join took at least
	}{
		{name: "the previous one ends", leaveIn: 200 * time.Millisecond, atLeast: 200 * time.Millisecond},
		{name: "it stays", refused: true, atLeast: wait},
	}
	for _, tt := range tests {
		// A process's joined connection, which it ends as when killed:
		// no Close.
		first, err := Join(sock, mac, nil)
		if err != nil {
			t.Fatalf("%s: first join: %v", tt.name, err)
		}
		if tt.leaveIn > 0 {
			time.AfterFunc(tt.leaveIn, func() {
				first.mu.Lock()
				first.conn.Close()
				first.mu.Unlock()
				first.Close()
			})
		}
		logMu.Lock()
		refusals = 0
		logMu.Unlock()
		start := time.Now()
		j, err := Join(sock, mac, nil)
		took := time.Since(start)
		logMu.Lock()
		if refusals > 8 {
			t.Errorf("%s: the hub logged %d refusals of the one MAC, want at most 8", tt.name, refusals)
		}
		logMu.Unlock()
		var re *RefusedError
		switch {
		case tt.refused && (!errors.As(err, &re) || re.Reason != RefusedDuplicateMAC):
			t.Errorf("%s: %v, want a duplicate MAC refusal", tt.name, err)
		case !tt.refused && err != nil:
			t.Errorf("%s: %v, want it let in", tt.name, err)
		case took < tt.atLeast:
			t.Errorf("%s: Join took %v, want at least %v", tt.name, took, tt.atLeast)
		}
		if j != nil {
			j.Close()
		}
		first.Close()
	}
}
