package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/internal/testsock"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
	vnet "github.com/smolvmm/smolvmm/virtio/net"
	"github.com/smolvmm/smolvmm/vmm"
)

// readyByAddr is a chatty guest made ready by ReadyAddr, a host listener
// that accepts: PhaseReady comes on the prober's goroutine.
func readyByAddr(t *testing.T) vmm.Config {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), ReadyAddr: ln.Addr().String()}
}

// readyByGuestPort is the vnet guest listening on port 80 behind a user
// network's forward, made ready by ReadyGuestPort: PhaseReady comes from
// the network card's transmit watch. The guest stays running after its
// SYN-ACK, where it used to exit at once and, on a loaded host, end before
// OnEvent's Snapshot could pause it.
func readyByGuestPort(t *testing.T) vmm.Config {
	return vnetReadyByPort(t, "listen=80 timeout=30 stay")
}

// vnetReadyByPort is the vnet guest, given words, behind a user network's
// forward of ReadyAddr to its port 80, made ready by ReadyGuestPort 80.
func vnetReadyByPort(t *testing.T, words string) vmm.Config {
	kernel := guest(t, "vnet")
	// Below the ephemeral range: free until the forward listens.
	port := testsock.Port(t)
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	fwd := netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: port, GuestPort: 80}
	back, err := netback.Open("user", []netback.Forward{fwd}, mac)
	if err != nil {
		t.Fatal(err)
	}
	nic, err := vnet.New(back, mac)
	if err != nil {
		back.Close()
		t.Fatal(err)
	}
	return vmm.Config{Kernel: kernel, Append: words, MemoryMiB: 16, Devices: []virtio.Device{nic},
		ReadyAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), ReadyGuestPort: 80}
}

// readyByPattern is a chatty guest made ready by its console: PhaseReady
// comes on the vCPU thread.
func readyByPattern(*testing.T) vmm.Config {
	return vmm.Config{Kernel: "chatty", KernelImage: chattyGuest(), Ready: regexp.MustCompile("x")}
}

// TestOnEventAtReady: OnEvent(PhaseReady) may call Snapshot and Close
// whichever goroutine reports it (the ReadyAddr prober, the transmit
// watch's report), and a panic in it is handed back as OnEvent's: Run
// returns it. Snapshot used to hang for good: the prober held the event
// lock the vCPU needed to report PhaseSnapshotWritten; the transmit watch
// ran OnEvent inside the card's Process, holding the worker lock the
// snapshot's Quiesce needed (and its panic was taken for the card's, a
// virtqueue violation, which stopped the guest's network). Run then
// ignored its context, and Close waited for Run for ever.
func TestOnEventAtReady(t *testing.T) {
	type action int
	const (
		snap action = iota
		closeIt
		panics
	)
	tests := []struct {
		name string
		cfg  func(*testing.T) vmm.Config
		do   action
	}{
		{"Snapshot, ReadyAddr", readyByAddr, snap},
		{"Snapshot, ReadyGuestPort", readyByGuestPort, snap},
		{"Close, ReadyAddr", readyByAddr, closeIt},
		{"Close, ReadyGuestPort", readyByGuestPort, closeIt},
		{"panic, ReadyAddr", readyByAddr, panics},
		{"panic, ReadyGuestPort", readyByGuestPort, panics},
		{"panic, console pattern (vCPU thread)", readyByPattern, panics},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			cfg := tt.cfg(t)
			var m *vmm.Machine
			var once sync.Once
			var buf bytes.Buffer
			called := make(chan error, 1)
			var phases []vmm.Phase // one call at a time: no lock
			cfg.OnEvent = func(e vmm.Event) {
				phases = append(phases, e.Phase)
				if e.Phase != vmm.PhaseReady {
					return
				}
				once.Do(func() {
					switch tt.do {
					case snap:
						_, err := m.Snapshot(&buf)
						called <- err
					case closeIt:
						called <- m.Close()
					case panics:
						close(called)
						panic("bug in OnEvent")
					}
				})
			}
			var out bytes.Buffer
			cfg.Log = &out
			m, err := vmm.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			stuck := false // a deadlock: Close would wait for ever too
			defer func() {
				if !stuck {
					m.Close()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res := make(chan runResult, 1)
			go func() {
				e, err := m.Run(ctx)
				res <- runResult{e, err}
			}()
			select {
			case err := <-called:
				if err != nil {
					t.Errorf("%v from OnEvent(PhaseReady)", err)
				}
			case r := <-res:
				if tt.do == panics {
					res <- r // it stops the machine: checked below
					break
				}
				t.Fatalf("Run = %+v, %v before OnEvent(PhaseReady) acted\n%s", r.exit, r.err, out.String())
			case <-time.After(deadlockBound):
				stuck = true
				t.Fatalf("deadlock: OnEvent(PhaseReady)'s call has not returned in %v", deadlockBound)
			}
			if tt.do == snap {
				if _, _, err := snapshot.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
					t.Errorf("the snapshot taken from OnEvent: %v", err)
				}
			}
			cancel()
			var r runResult
			select {
			case r = <-res:
			case <-time.After(deadlockBound):
				stuck = true
				t.Fatalf("deadlock: Run has not returned %v after its context ended", deadlockBound)
			}
			if tt.do != panics {
				if r.err != nil || r.exit.Reason != vmm.ExitStopped {
					t.Errorf("Run = %+v, %v; want stopped", r.exit, r.err)
				}
			} else {
				var ve *vmm.Error
				var pe *vmm.PanicError
				if !errors.As(r.err, &ve) || ve.Field != "OnEvent" || !errors.As(r.err, &pe) {
					t.Fatalf("Run = %+v, %v; want a *vmm.Error with Field OnEvent wrapping a *vmm.PanicError\n%s", r.exit, r.err, out.String())
				}
				if pe.Call != "Config.OnEvent" || pe.Value != "bug in OnEvent" || !strings.Contains(string(pe.Stack), "panic") {
					t.Errorf("PanicError = %q, %v, stack:\n%s", pe.Call, pe.Value, pe.Stack)
				}
				if i := slices.Index(phases, vmm.PhaseReady); i != len(phases)-1 {
					t.Errorf("OnEvent called at %v after it panicked at PhaseReady", phases[i+1:])
				}
			}
			within(t, "Close", deadlockBound, func() {
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		})
	}
}

// TestOnEventPanicOutsideRun: OnEvent panicking at a phase reported on
// the caller's own goroutine (New's, a Snapshot's before Run) panics
// there, as a *vmm.PanicError naming OnEvent, and is not called again:
// the machine then runs, and Run does not return it.
func TestOnEventPanicOutsideRun(t *testing.T) {
	tests := []struct {
		name  string
		phase vmm.Phase
	}{
		{"New", vmm.PhaseKernelLoaded},
		{"Snapshot before Run", vmm.PhaseSnapshotWritten},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needKVM(t)
			var after []vmm.Phase
			panicked := false
			cfg := vmm.Config{Kernel: "spin", KernelImage: spinner(), OnEvent: func(e vmm.Event) {
				if panicked {
					after = append(after, e.Phase)
				}
				if e.Phase == tt.phase {
					panicked = true
					panic("bug in OnEvent")
				}
			}}
			caught := func(fn func()) (p any) {
				defer func() { p = recover() }()
				fn()
				return nil
			}
			var m *vmm.Machine
			var err error
			p := caught(func() { m, err = vmm.New(cfg) })
			if tt.phase != vmm.PhaseKernelLoaded {
				if p != nil || err != nil {
					t.Fatalf("New: panic %v, err %v", p, err)
				}
				p = caught(func() { _, err = m.Snapshot(discard{}) })
			}
			var pe *vmm.PanicError
			if e, ok := p.(error); !ok || !errors.As(e, &pe) || pe.Call != "Config.OnEvent" || pe.Value != "bug in OnEvent" {
				t.Fatalf("panic %v (err %v), want a *vmm.PanicError of Config.OnEvent with its value", p, err)
			}
			if m == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if e, err := m.Run(ctx); err != nil || e.Reason != vmm.ExitStopped {
				t.Errorf("Run = %+v, %v; want stopped", e, err)
			}
			if len(after) != 0 {
				t.Errorf("OnEvent called at %v after it panicked", after)
			}
			within(t, "Close", deadlockBound, func() { m.Close() })
		})
	}
}
