package vmm

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/smolvmm/smolvmm/internal/portready"
)

// lookupReadyHost looks Config.ReadyAddr's host name up; tests fake it.
var lookupReadyHost portready.LookupFunc = net.DefaultResolver.LookupNetIP

// resolveReadyAddr resolves Config.ReadyAddr (checkWatchers passed it),
// in New or Restore, into the IP addresses and port the prober dials
// (none without one; the loopback addresses for an empty host). A name
// dialed by the prober was looked up while Run ran: under BeforeRun's
// sandbox, which stops the process at what a lookup does (uname, reading
// /etc/hosts), and by goroutines of the resolver's that Run did not wait
// for.
func resolveReadyAddr(addr string) ([]string, error) {
	if addr == "" {
		return nil, nil
	}
	addrs, err := portready.Resolve(context.Background(), addr, lookupReadyHost)
	if err != nil {
		return nil, &Error{Op: "ready address", Err: fmt.Errorf("%q: %w: %w", addr, err, ErrConfig),
			Hint: "give a host name that resolves, or an IP address", Field: "ReadyAddr"}
	}
	return addrs, nil
}

// ready reports PhaseReady once.
func (m *Machine) ready() { m.readyAt(time.Now()) }

// readyAt reports PhaseReady once, at t. Only the claim is under
// readyOnce: OnEvent, which may call Snapshot and so wait for the vCPU,
// runs outside it, lest the vCPU wait in readyOnce (the boot-timer port,
// the console's pattern) for the prober's call.
func (m *Machine) readyAt(t time.Time) {
	claimed := false
	m.readyOnce.Do(func() {
		claimed = true
		m.readyDone.Store(true)
		m.watch.stopReady()
	})
	if !claimed {
		return
	}
	m.eventAt(PhaseReady, t)
	m.snapshotOnReady()
}

// readyPortInterval is how often ReadyAddr is probed.
const readyPortInterval = 5 * time.Millisecond

// transmitWatcher is a network card that shows what the guest sends
// (virtio/net.Device).
type transmitWatcher interface {
	SetTransmitWatch(func(frame []byte))
}

// probeReadyAddr starts probing Config.ReadyAddr (nil without one): the
// first connection that holds reports PhaseReady, timed at its connect.
// With ReadyGuestPort it watches the network cards' transmit queues for
// the guest's SYN-ACK instead, and only dials ReadyAddr. Run stops it on
// its way out, and ends the watch.
func (m *Machine) probeReadyAddr() *portready.Prober {
	if port := m.cfg.ReadyGuestPort; port != 0 {
		watch := func(frame []byte) {
			if !m.readyDone.Load() && portready.Accepted(frame, port) {
				m.readySeen(time.Now())
			}
		}
		for _, d := range m.cfg.Devices {
			if w, ok := d.(transmitWatcher); ok {
				w.SetTransmitWatch(watch)
			}
		}
		if m.readyAddrs == nil {
			return nil
		}
		return portready.StartDialing(m.readyAddrs, readyPortInterval, m.readyDone.Load)
	}
	if m.readyAddrs == nil {
		return nil
	}
	return portready.Start(m.readyAddrs, readyPortInterval, m.readyFromWaited)
}

// readyFromWaited is readyAt on a goroutine Run waits for (the prober,
// readySeen's), which Config.OnEvent and OnSnapshot may call Close
// from.
func (m *Machine) readyFromWaited(t time.Time) {
	defer m.waited.enter()()
	m.readyAt(t)
}

// readySeen reports PhaseReady, seen at t by the transmit watch, on a
// goroutine of its own, which Run joins (stopReadyWatch): the watch runs
// in the network card's Process, under its transport's worker lock,
// which a Snapshot from OnEvent would wait for (it quiesces the
// devices), and where a panic of OnEvent would be taken for the
// device's.
func (m *Machine) readySeen(t time.Time) {
	m.readySeenMu.Lock()
	defer m.readySeenMu.Unlock()
	if m.readySeenGo || m.readySeenStop {
		return
	}
	m.readySeenGo = true
	m.readySeenWG.Add(1)
	go func() {
		defer m.readySeenWG.Done()
		m.readyFromWaited(t)
	}()
}

// stopReadyWatch removes the transmit watch probeReadyAddr set, and waits
// for the report of what it saw.
func (m *Machine) stopReadyWatch() {
	if m.cfg.ReadyGuestPort == 0 {
		return
	}
	for _, d := range m.cfg.Devices {
		if w, ok := d.(transmitWatcher); ok {
			w.SetTransmitWatch(nil)
		}
	}
	m.readySeenMu.Lock()
	m.readySeenStop = true // a watch call still in flight starts none
	m.readySeenMu.Unlock()
	m.readySeenWG.Wait()
}
