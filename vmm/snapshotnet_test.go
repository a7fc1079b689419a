package vmm_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/vmm"
)

var snapNetMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x5e, 0x00, 0x01}

// snapNetMachine is a machine New made (the spinner) with a network card
// on its own user network unless noCard, and SnapshotNetwork fn.
func snapNetMachine(t *testing.T, noCard bool, fn func() snapshot.Network) *vmm.Machine {
	t.Helper()
	cfg := vmm.Config{Kernel: "spin", KernelImage: spinner(), SnapshotNetwork: fn}
	if !noCard {
		cfg.Devices = []virtio.Device{userNIC(t, snapNetMAC)}
	}
	m, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestSnapshotNetwork: each snapshot's header records the network
// Config.SnapshotNetwork says, asked as the snapshot is taken (a second
// snapshot records the address leased since); a record no reader would
// take, and a panic, fail the snapshot before a byte is written, with
// Field SnapshotNetwork, and the next snapshot is taken as usual.
func TestSnapshotNetwork(t *testing.T) {
	needKVM(t)
	leased := []netip.Addr{netip.MustParseAddr("10.0.2.16"), netip.MustParseAddr("10.0.2.17")}
	shared := func(i int) snapshot.Network {
		return snapshot.Network{Kind: snapshot.NetShared, Name: "cb", Addr: leased[i]}
	}
	tests := []struct {
		name   string
		noCard bool
		fn     func(i int) snapshot.Network // for the i-th snapshot, 0 and 1
		want   [2]snapshot.Network
		err    error  // of the first snapshot; the second succeeds
		text   string // what its error says
	}{
		{"none", false, nil, [2]snapshot.Network{}, nil, ""},
		{"NetUnknown", false, func(int) snapshot.Network { return snapshot.Network{} }, [2]snapshot.Network{}, nil, ""},
		{"shared, address renewed", false, shared, [2]snapshot.Network{shared(0), shared(1)}, nil, ""},
		{"own user network", false, func(int) snapshot.Network { return snapshot.Network{Kind: snapshot.NetUser, Addr: leased[0]} },
			[2]snapshot.Network{{Kind: snapshot.NetUser, Addr: leased[0]}, {Kind: snapshot.NetUser, Addr: leased[0]}}, nil, ""},
		{"tap without a name", false, func(i int) snapshot.Network {
			if i == 0 {
				return snapshot.Network{Kind: snapshot.NetTap}
			}
			return snapshot.Network{Kind: snapshot.NetTap, Name: "tap0"}
		}, [2]snapshot.Network{{}, {Kind: snapshot.NetTap, Name: "tap0"}}, vmm.ErrConfig, "the network to record: tap network without a name"},
		{"a network without a card", true, func(i int) snapshot.Network {
			if i == 0 {
				return snapshot.Network{Kind: snapshot.NetUser}
			}
			return snapshot.Network{}
		}, [2]snapshot.Network{}, vmm.ErrConfig, "user network recorded for a machine without a network card"},
		{"panic", false, func(i int) snapshot.Network {
			if i == 0 {
				panic("no network")
			}
			return shared(1)
		}, [2]snapshot.Network{{}, shared(1)}, &vmm.PanicError{}, "Config.SnapshotNetwork panicked: no network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var fn func() snapshot.Network
			if tt.fn != nil {
				fn = func() snapshot.Network { calls++; return tt.fn(calls - 1) }
			}
			m := snapNetMachine(t, tt.noCard, fn)
			for i := range 2 {
				var b bytes.Buffer
				_, err := m.Snapshot(&b)
				if i == 0 && tt.err != nil {
					var ve *vmm.Error
					if err == nil || !errors.As(err, &ve) || ve.Field != "SnapshotNetwork" || !strings.Contains(err.Error(), tt.text) {
						t.Fatalf("Snapshot = %v; want a *vmm.Error with Field SnapshotNetwork mentioning %q", err, tt.text)
					}
					var pe *vmm.PanicError
					if _, panicked := tt.err.(*vmm.PanicError); panicked && !errors.As(err, &pe) || !panicked && !errors.Is(err, tt.err) {
						t.Errorf("Snapshot = %v; want it to wrap %T %v", err, tt.err, tt.err)
					}
					if b.Len() != 0 {
						t.Errorf("a refused snapshot wrote %d bytes; want none", b.Len())
					}
					continue
				}
				if err != nil {
					t.Fatalf("snapshot %d: %v", i, err)
				}
				h, _, err := snapshot.Read(bytes.NewReader(b.Bytes()), int64(b.Len()))
				if err != nil {
					t.Fatal(err)
				}
				if h.Version != snapshot.Version || h.Net != tt.want[i] {
					t.Errorf("snapshot %d: version %d, network %+v; want %d, %+v", i, h.Version, h.Net, snapshot.Version, tt.want[i])
				}
			}
			if tt.fn != nil && calls != 2 {
				t.Errorf("SnapshotNetwork called %d times for 2 snapshots; want 2", calls)
			}
		})
	}
}

// TestSnapshotNetworkSnapshots: SnapshotNetwork, called as a snapshot
// is taken, cannot take one itself.
func TestSnapshotNetworkSnapshots(t *testing.T) {
	needKVM(t)
	var m *vmm.Machine
	var inner error
	m = snapNetMachine(t, false, func() snapshot.Network {
		_, inner = m.Snapshot(&bytes.Buffer{})
		return snapshot.Network{Kind: snapshot.NetUser}
	})
	if _, err := m.Snapshot(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, vmm.ErrSnapshotFromCallback) {
		t.Fatalf("Snapshot from SnapshotNetwork = %v; want ErrSnapshotFromCallback", inner)
	}
}

// TestRestoreVersion8: a version-8 snapshot (a smolvmm's before the
// network record: bytes 107-127 zero) restores and runs as the same
// snapshot of this version, its card and MAC as recorded, no network.
func TestRestoreVersion8(t *testing.T) {
	needKVM(t)
	m := snapNetMachine(t, false, func() snapshot.Network {
		return snapshot.Network{Kind: snapshot.NetShared, Name: "cb", Addr: netip.MustParseAddr("10.0.2.16")}
	})
	var b bytes.Buffer
	if _, err := m.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	m.Close()
	v10 := b.Bytes()
	v8 := bytes.Clone(v10)
	binary.LittleEndian.PutUint32(v8[8:], 8)
	clear(v8[107:snapshot.HeaderSize])
	s := sha256.New()
	s.Write(v8[:48])
	s.Write(v8[80:snapshot.HeaderSize])
	s.Write(v8[snapshot.HeaderSize : snapshot.HeaderSize+binary.LittleEndian.Uint64(v8[32:])])
	copy(v8[48:80], s.Sum(nil))
	dir := t.TempDir()
	for _, f := range []struct {
		name string
		b    []byte
		net  snapshot.Network
	}{
		{"version 8", v8, snapshot.Network{}},
		{"version 10", v10, snapshot.Network{Kind: snapshot.NetShared, Name: "cb", Addr: netip.MustParseAddr("10.0.2.16")}},
	} {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(f.name, " ", "")+".snap")
			if err := os.WriteFile(path, f.b, 0o600); err != nil {
				t.Fatal(err)
			}
			hf, err := snapshot.OpenHeader(path)
			if err != nil {
				t.Fatal(err)
			}
			if hf.Header.Net != f.net {
				t.Errorf("header's network %+v; want %+v", hf.Header.Net, f.net)
			}
			hf.Close()
			has, mac, err := vmm.SnapshotNIC(path)
			if err != nil || !has || mac.String() != snapNetMAC.String() {
				t.Fatalf("SnapshotNIC = %t, %v, %v; want a card with %v", has, mac, err, snapNetMAC)
			}
			running := make(chan struct{})
			r, err := vmm.Restore(vmm.Config{Devices: []virtio.Device{userNIC(t, snapNetMAC)}, OnEvent: func(e vmm.Event) {
				if e.Phase == vmm.PhaseFirstRun {
					close(running)
				}
			}}, path)
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			defer r.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, err := r.Run(ctx); done <- err }()
			select {
			case <-running:
			case err := <-done:
				t.Fatalf("Run ended before the guest ran: %v", err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}
