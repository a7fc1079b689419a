package net

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// TestTransmitWatch: a watch sees each frame the guest sends, as the
// backend gets it and before, and a bad chain not at all; once removed it
// sees nothing more.
func TestTransmitWatch(t *testing.T) {
	r := newRig(t)
	var seen [][]byte
	r.dev.SetTransmitWatch(func(f []byte) {
		if len(r.be.out) != 0 {
			t.Error("the backend got the frame before the watch saw it")
		}
		seen = append(seen, append([]byte(nil), f...))
	})
	send := func(f []byte) {
		b := r.alloc.Take(HeaderSize+uint64(len(f)), 16)
		r.put(b+HeaderSize, f)
		r.tx.Publish(r.tx.AddChain([]virtiotest.Buf{{Addr: b, Len: HeaderSize + uint32(len(f))}}))
		r.drv.Notify(TxQueue)
		if _, _, err := r.tx.WaitUsed(virtiotest.Patience); err != nil {
			t.Fatal(err)
		}
	}
	short := r.alloc.Take(20, 16)
	r.tx.Publish(r.tx.AddChain([]virtiotest.Buf{{Addr: short, Len: HeaderSize + 13}})) // no whole Ethernet header
	first := frame(64, 1)
	send(first)
	if got := r.sent(); !bytes.Equal(got, first) {
		t.Fatal("backend did not get the frame")
	}
	r.dev.SetTransmitWatch(nil)
	send(frame(64, 2))
	r.sent()
	if len(seen) != 1 || !bytes.Equal(seen[0], first) {
		t.Errorf("watch saw %d frames, want only the first good one", len(seen))
	}
}

// TestTransmitWatchPanics: a watch that panics is its setter's bug, not
// the guest's: the device goes on (not broken, the frame sent), the
// watch is removed, and the log names it. (The transport took the panic
// for the device's: "virtqueue violation: device panicked", and the
// guest's network stopped.)
func TestTransmitWatchPanics(t *testing.T) {
	log := &virtiotest.Log{}
	be := newFakeBackend()
	r := newRigLog(t, be, slog.New(slog.NewTextHandler(log, nil)))
	r.be = be
	calls := 0
	r.dev.SetTransmitWatch(func([]byte) {
		calls++
		panic("bug in the watch")
	})
	for i := range 2 {
		f := frame(64, byte(i))
		b := r.alloc.Take(HeaderSize+uint64(len(f)), 16)
		r.put(b+HeaderSize, f)
		r.tx.Publish(r.tx.AddChain([]virtiotest.Buf{{Addr: b, Len: HeaderSize + uint32(len(f))}}))
		r.drv.Notify(TxQueue)
		if _, _, err := r.tx.WaitUsed(virtiotest.Patience); err != nil {
			t.Fatalf("frame %d: %v\n%s", i, err, log)
		}
		if got := r.sent(); !bytes.Equal(got, f) {
			t.Fatalf("frame %d did not reach the backend\n%s", i, log)
		}
	}
	if r.pd.Broken() {
		t.Errorf("the device is broken after the watch panicked:\n%s", log)
	}
	if calls != 1 {
		t.Errorf("watch called %d times, want once (removed after its panic)", calls)
	}
	if got := log.String(); !strings.Contains(got, "transmit watch panicked") || !strings.Contains(got, "bug in the watch") {
		t.Errorf("log does not name the watch's panic:\n%s", got)
	}
}
