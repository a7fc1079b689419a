package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunPrintsBackendStats: run prints, at exit, the counters of its
// network backend beside the card's: under -v, and without it whenever
// the backend refused or dropped something the card never saw (the
// docs/network.md says these are counted; only the card's were printed). The
// forward's host connections beyond the 128 that may wait for a guest
// that never accepts (the vblk guest has no network driver) are closed
// at once and counted.
func TestRunPrintsBackendStats(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	tests := []struct {
		name    string
		verbose bool
		flood   int    // host connections to the forward
		want    string // in the exit's stderr, "" for no network line
	}{
		{"quiet", false, 0, ""},
		{"verbose", true, 0, "smolvmm run: network user: "},
		{"refused", false, 140, "smolvmm run: network user: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freeTCPPort(t) // snapshot_test.go
			extra := []string{"--net", "user", "-p", port + ":80"}
			if tt.verbose {
				extra = append(extra, "-v")
			}
			cmd, stderr := runningVM(t, nil, extra...)
			var last net.Conn
			for i := 0; i < tt.flood; i++ {
				c, err := net.Dial("tcp", "127.0.0.1:"+port)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				last = c
			}
			if last != nil {
				// Accepted in turn, the last is refused once all
				// before it were: closed at once, not after 5 s.
				last.SetReadDeadline(time.Now().Add(3 * time.Second))
				if _, err := last.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("connection %d: read %v, want EOF (closed at once)", tt.flood, err)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			out := stderr.String()
			if tt.want == "" {
				if strings.Contains(out, "network user:") {
					t.Errorf("a network line with nothing refused and no -v:\n%s", out)
				}
				return
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, out)
			}
			refused := fmt.Sprintf("; %d forwarded TCP connections closed at once, too many waiting for the guest", tt.flood-128)
			if got := strings.Contains(out, refused); got != (tt.flood > 0) {
				t.Errorf("stderr says %q: %v, want %v:\n%s", refused, got, tt.flood > 0, out)
			}
		})
	}
}
