package netback_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// A hub's Logf may Close the hub: Close called from it returns at once
// (Logf runs on goroutines Close waits for), the hub stops meanwhile, and
// a Close from elsewhere waits for that and returns. Before, each hung
// for ever: Close waited for the goroutine it was called on, or, called
// from Logf while another Close was under way (a VM's "left" line as the
// hub stops) or from Close's own last log line (a failed lease save),
// waited for itself in its sync.Once.
func TestHubCloseFromLogf(t *testing.T) {
	var stopping atomic.Bool // the hub's Close was called
	// saveFails: the VM's Join returned. A save failing before would
	// close the hub, from Logf, before it answered the VM.
	var saveFails atomic.Bool
	for _, tc := range []struct {
		name string
		// on is the part of the log line Logf closes the hub on.
		on string
		// failSave, when set, says whether a lease file write is to fail
		// (and be logged).
		failSave func() bool
		// act makes the hub log on: it gets a VM to join, and more.
		act func(t *testing.T, h *netback.Hub)
	}{
		{name: "VM joined", on: " joined as ", act: joinAndLeave(false)},
		{name: "VM left", on: " left: ", act: joinAndLeave(true)},
		{name: "VM left as the hub stops", on: " left: ", act: func(t *testing.T, h *netback.Hub) {
			joinAndLeave(false)(t, h)
			go h.Close()
		}},
		{name: "lease save failed", on: "disk full", failSave: saveFails.Load, act: func(t *testing.T, h *netback.Hub) {
			j, err := netback.Join(h.Socket(), testMAC(7), nil)
			if err != nil {
				t.Fatal(err)
			}
			saveFails.Store(true)
			// The join's save, if it is not done yet, or the leave's fails.
			j.Close()
		}},
		{name: "Close's lease save failed", on: "disk full", failSave: stopping.Load, act: func(t *testing.T, h *netback.Hub) {
			joinAndLeave(false)(t, h)
			<-h.Changed() // the join's save is done
			stopping.Store(true)
			go h.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(testsock.Dir(t), "net.sock")
			var h *netback.Hub
			ready := make(chan struct{})
			closed := make(chan struct{})
			var once sync.Once
			logf := func(f string, a ...any) {
				line := fmt.Sprintf(f, a...)
				t.Logf("hub: %s", line)
				<-ready
				if strings.Contains(line, tc.on) {
					h.Close()
					once.Do(func() { close(closed) })
				}
			}
			save := func(save func() error) error {
				if tc.failSave != nil && tc.failSave() {
					return errors.New("disk full")
				}
				return save()
			}
			var err error
			h, err = netback.NewHubWithSave(netback.HubConfig{Socket: sock, Logf: logf}, save)
			if err != nil {
				t.Fatal(err)
			}
			close(ready)
			tc.act(t, h)
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close called from Logf did not return within 10s")
			}
			done := make(chan struct{})
			go func() { h.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close from elsewhere did not return within 10s of Logf's")
			}
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Close the socket is still there (Lstat: %v)", err)
			}
			if n := h.Stats().VMs; n != 0 {
				t.Errorf("after Close %d VMs are joined, want 0", n)
			}
		})
	}
}

// joinAndLeave is an act of TestHubCloseFromLogf: a VM joins, and leaves
// if leave.
func joinAndLeave(leave bool) func(t *testing.T, h *netback.Hub) {
	return func(t *testing.T, h *netback.Hub) {
		j, err := netback.Join(h.Socket(), testMAC(7), nil)
		if err != nil {
			t.Fatal(err)
		}
		if leave {
			j.Close()
		} else {
			t.Cleanup(func() { j.Close() })
		}
	}
}
