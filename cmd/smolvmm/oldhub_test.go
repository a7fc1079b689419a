package main

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/netback"
)

// oldHub answers every connection on a new socket as a hub of an older
// smolvmm of protocol version 1 refuses it: status and its message, which
// ended with advice of its own. It returns the socket.
func oldHub(t *testing.T, status netback.Refusal, message string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "old.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	body, err := json.Marshal(map[string]string{"error": message})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var h [8]byte
			if _, err := io.ReadFull(c, h[:]); err == nil {
				_, _ = io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(h[6:])))
			}
			ans := []byte{'S', 'M', 'V', 'N', 1, byte(status), 0, 0}
			binary.BigEndian.PutUint16(ans[6:], uint16(len(body)))
			_, _ = c.Write(append(ans, body...))
			c.Close()
		}
	}()
	return sock
}

// TestOldHubRefusalAdvisedOnce: a shared network's daemon of an older
// smolvmm, still running after an upgrade, refuses with its advice after
// the fact; this program's advice for the reason is said once all the
// same, after the fact.
func TestOldHubRefusalAdvisedOnce(t *testing.T) {
	const (
		dupFact  = "a VM with MAC 52:54:00:5b:00:01 is connected already"
		busyFact = "the network has 12 connections whose handshake is not over, the most it takes at once"
	)
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x5b, 0x00, 0x01}
	tests := []struct {
		name   string
		status netback.Refusal
		said   string
		query  bool // bench's question of how many VMs are joined, not a join
		want   string
	}{
		{"duplicate MAC", netback.RefusedDuplicateMAC, dupFact + "; give each VM its own MAC", false, dupFact + " (give this VM another --mac)"},
		{"busy join", netback.RefusedBusy, busyFact + "; try again once fewer VMs are joining", false, busyFact + " (try again once fewer VMs are joining)"},
		{"busy query", netback.RefusedBusy, busyFact + "; try again once fewer VMs are joining", true, busyFact + " (try again once fewer VMs are joining)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := oldHub(t, tt.status, tt.said)
			var err error
			if tt.query {
				_, err = netback.HubVMs(sock)
				err = hubVMsError(err)
			} else {
				var j *netback.Joined
				if j, err = netback.Join(sock, mac, nil); err == nil {
					j.Close()
				}
				err = backendError("user:"+sock, err)
			}
			if err == nil {
				t.Fatal("not refused")
			}
			got := advise(err)
			for _, a := range []string{"give each VM its own MAC", "another --mac", "try again once fewer VMs are joining"} {
				if n := strings.Count(got, a); n > 1 {
					t.Errorf("advise: %q has %q %d times", got, a, n)
				}
			}
			if !strings.HasSuffix(got, tt.want) {
				t.Errorf("advise: %q, want it to end %q", got, tt.want)
			}
		})
	}
}
