package netback_test

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
)

// A VM that stops reading holds at most HubPortBytes of the hub's
// memory, the frames beyond dropped and counted, whether they are short
// or MTU-sized, and is dropped once its connection took no frame for the
// write timeout, which the hub logs. So is one that read a little after
// the burst, leaving its queue room (as a hub's writer that was behind
// at the burst's end does, on a busy host).
func TestHubSlowVMBounded(t *testing.T) {
	tests := []struct {
		name string
		size int
		// readAfter is how many bytes the VM reads after the burst
		// before it stops for good.
		readAfter int
	}{
		{"short frames", 60, 0},
		{"MTU frames", 1514, 0},
		{"short frames, some read after", 60, 256 << 10},
		{"MTU frames, some read after", 1514, 256 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No drop during the burst and the read after it: on a
			// loaded host (-race) the queue can stay full past a short
			// timeout while the burst is still being queued, and the VM
			// was dropped before it had read what it reads.
			defer netback.SetHubWriteTimeout(time.Minute)()
			var mu sync.Mutex
			var logs []string
			logf := func(format string, args ...any) {
				mu.Lock()
				logs = append(logs, fmt.Sprintf(format, args...))
				mu.Unlock()
			}
			h, vm, key, frame := silentVM(t, logf, tt.size)
			var most int64
			for range 20000 {
				if !netback.HubSendTo(h, key, frame) {
					t.Fatal("the VM was dropped during the burst")
				}
				most = max(most, netback.HubQueuedBytes(h, key))
			}
			if most > netback.HubPortBytes {
				t.Errorf("%d bytes queued towards a VM that does not read; want at most %d", most, netback.HubPortBytes)
			}
			if h.Stats().Dropped == 0 {
				t.Error("no frame counted dropped")
			}
			if tt.readAfter > 0 {
				vm.c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(vm.c, make([]byte, tt.readAfter)); err != nil {
					t.Fatal(err)
				}
			}
			netback.SetHubWriteTimeout(300 * time.Millisecond)
			// Frames keep coming, the queue stays full: the VM is
			// dropped once it has been for the timeout. The queue is
			// filled again each round, not given a frame: the hub's
			// writer may still be moving frames into the connection
			// after the burst, and at a frame a round the room that
			// leaves (thousands of short frames) took longer than any
			// bound to fill. Once the connection is full, the drop
			// comes the timeout later; the bound is only against a hang.
			deadline := time.Now().Add(20 * time.Second)
			for h.Stats().VMs != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the VM that does not read is still joined after 20 s")
				}
				netback.HubFillQueue(h, key, frame)
				time.Sleep(5 * time.Millisecond)
			}
			mu.Lock()
			all := strings.Join(logs, "\n")
			mu.Unlock()
			if !strings.Contains(all, "left: dropped: its connection took no frame for 300ms") {
				t.Errorf("the drop was not logged as such:\n%s", all)
			}
		})
	}
}

// TestHubStoppedVMStays: a VM that reads nothing (stopped, as bench
// --parallel stops its VMs to read their memory) while fewer frames come
// its way than its queue holds stays joined, however long: its socket
// fills, its queue does not. Before, the hub dropped it once a write to it
// had waited for the timeout.
func TestHubStoppedVMStays(t *testing.T) {
	defer netback.SetHubWriteTimeout(200 * time.Millisecond)()
	h, _, key, frame := silentVM(t, func(string, ...any) {}, 1514)
	// More than its socket takes (600 KB), fewer than its queue holds
	// (400 buffers of 2 KiB, under 1 MiB).
	const n = 400
	for range n {
		netback.HubSendTo(h, key, frame)
	}
	if d := h.Stats().Dropped; d != 0 {
		t.Fatalf("%d of %d frames dropped; the queue should hold them all", d, n)
	}
	// Past the timeout, a frame more: a write waiting that long, or a
	// queue full that long, would have the VM dropped by now.
	time.Sleep(3 * 200 * time.Millisecond)
	netback.HubSendTo(h, key, frame)
	if vms := h.Stats().VMs; vms != 1 {
		t.Errorf("%d VMs joined; the stopped VM was dropped", vms)
	}
}

// A VM's leave is logged with its cause, not the hub's socket as it was
// bound (a temporary path, gone since): the hub's own Close as "network
// stopping", the VM closing its connection as such.
func TestHubLeaveLogged(t *testing.T) {
	tests := []struct {
		name  string
		close func(h *netback.Hub, vm *rawVM)
		want  string
	}{
		{"network stops", func(h *netback.Hub, _ *rawVM) { h.Close() }, "left: network stopping"},
		{"VM closes", func(_ *netback.Hub, vm *rawVM) { vm.c.Close() }, "left: it closed its connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var logs []string
			logf := func(format string, args ...any) {
				mu.Lock()
				logs = append(logs, fmt.Sprintf(format, args...))
				mu.Unlock()
			}
			dir := testsock.Dir(t)
			h, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(dir, "net.sock"), Logf: logf})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			vm := joinRaw(t, h, testMAC(1))
			tt.close(h, vm)
			for deadline := time.Now().Add(20 * time.Second); h.Stats().VMs != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the VM is still joined")
				}
			}
			h.Close()
			mu.Lock()
			all := strings.Join(logs, "\n")
			mu.Unlock()
			if !strings.Contains(all, tt.want) || strings.Contains(all, dir) {
				t.Errorf("log:\n%s\nwant %q, and no path under %s", all, tt.want, dir)
			}
		})
	}
}

// silentVM starts a hub logging to logf with one VM joined that does not
// read, and returns the hub (closed by a cleanup), the VM, its MAC as the
// hub keys it and a frame of size bytes addressed to it.
func silentVM(t *testing.T, logf func(string, ...any), size int) (*netback.Hub, *rawVM, [6]byte, []byte) {
	t.Helper()
	h, err := netback.NewHub(netback.HubConfig{Socket: filepath.Join(testsock.Dir(t), "net.sock"), Logf: logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	mac := testMAC(1)
	vm := joinRaw(t, h, mac)
	var key [6]byte
	copy(key[:], mac)
	frame := make([]byte, size)
	copy(frame, mac)
	copy(frame[6:], netback.UserGatewayMAC)
	return h, vm, key, frame
}
