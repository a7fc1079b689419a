package netback

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// A hub of an older smolvmm, still running after an upgrade, speaks the
// same protocol version but ends its refusals with advice of its own: the
// VM's side keeps the fact alone, as a hub of this version sends it, so
// that its program's advice is said once.
func TestOldHubAdviceTrimmed(t *testing.T) {
	defer func(d time.Duration) { joinDuplicateWaitFor = d }(joinDuplicateWaitFor)
	joinDuplicateWaitFor = 0
	tests := []struct {
		name   string
		status Refusal
		said   string
		want   string
	}{
		{"duplicate MAC", RefusedDuplicateMAC, "a VM with MAC 52:54:00:5b:00:01 is connected already; give each VM its own MAC",
			"a VM with MAC 52:54:00:5b:00:01 is connected already"},
		{"busy", RefusedBusy, "the network has 12 connections whose handshake is not over, the most it takes at once; try again once fewer VMs are joining",
			"the network has 12 connections whose handshake is not over, the most it takes at once"},
		{"new hub's busy", RefusedBusy, "the network has 12 connections whose handshake is not over, the most it takes at once",
			"the network has 12 connections whose handshake is not over, the most it takes at once"},
		// Only the old hub's own endings, of their reasons, go.
		{"other reason", RefusedForward, "host port 80 is taken; give each VM its own MAC",
			"host port 80 is taken; give each VM its own MAC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, err := json.Marshal(hubAnswer{Error: tt.said})
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var re *RefusedError
				if !errors.As(err, &re) || re.Reason != tt.status || re.Message != tt.want {
					t.Errorf("%s: %v, want a refusal %q", what, err, tt.want)
				}
			}
			sock := filepath.Join(t.TempDir(), "n.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			errc := make(chan error, 1)
			go func() {
				_, err := Join(sock, net.HardwareAddr{0x52, 0x54, 0x00, 0x5b, 0x00, 0x01}, nil)
				errc <- err
			}()
			fakeHub(t, ln, hubVersion, byte(tt.status), string(ans)).Close()
			check("Join", <-errc)

			go func() {
				_, err := HubVMs(sock)
				errc <- err
			}()
			fakeHub(t, ln, hubVersion, byte(tt.status), string(ans)).Close()
			check("HubVMs", <-errc)

			// Refused at once, before the hello is read: the hello's
			// write fails, and the answer is read after.
			go func() {
				c, err := ln.Accept()
				if err != nil {
					errc <- err
					return
				}
				h := []byte{'S', 'M', 'V', 'N', hubVersion, byte(tt.status), 0, 0}
				binary.BigEndian.PutUint16(h[6:], uint16(len(ans)))
				_, err = c.Write(append(h, ans...))
				c.Close()
				errc <- err
			}()
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			check("sayHello", sayHello(c, sock, hubHello{MAC: "52:54:00:5b:00:01"}))
		})
	}
}
