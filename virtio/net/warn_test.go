package net

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// downBackend is a fakeBackend whose sends fail as a tap's do while the
// interface is down.
type downBackend struct{ *fakeBackend }

func (downBackend) WriteFrame([]byte) error { return unix.EIO }

// Frames the device drops and frames the backend fails to send were only
// counted, and nothing read the counters: the first of each kind is now
// warned of on the transport's log (the TX error with its error), the
// rest counted.
func TestDropsWarnedOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		down  bool
		drive func(r *rig)
		stat  func(Stats) uint64
		want  string
	}{
		{"frame longer than the guest's buffer", false, func(r *rig) {
			r.postRx(2048)
			r.be.in <- frame(3000, 1)
			r.be.in <- frame(4000, 2)
		}, func(s Stats) uint64 { return s.RxTooLong }, "longer than the guest's receive buffer (a network MTU above the guest's); later ones are counted\" virtio_type=1 frame_bytes=3000 buffer_bytes=2048"},
		{"backend send error", true, func(r *rig) {
			r.postTx(1)
			r.postTx(2)
			r.drv.Notify(TxQueue)
		}, func(s Stats) uint64 { return s.TxErrors }, "failed to send a frame; it is lost, later failures are counted\" virtio_type=1 err=\"input/output error\""},
		{"malformed transmit chain", false, func(r *rig) {
			short := r.alloc.Take(20, 16)
			r.tx.Publish(r.tx.AddChain([]virtiotest.Buf{{Addr: short, Len: HeaderSize + 13}}))
			r.tx.Publish(r.tx.AddChain([]virtiotest.Buf{{Addr: short, Len: HeaderSize + 12}}))
			r.drv.Notify(TxQueue)
		}, func(s Stats) uint64 { return s.TxBadChains }, "not sent, later ones are counted\" virtio_type=1 chain_bytes=23"},
		{"receive buffer without room for the headers", false, func(r *rig) {
			for range 2 {
				small := r.alloc.Take(16, 16)
				r.rx.Publish(r.rx.AddChain([]virtiotest.Buf{{Addr: small, Len: 16, Write: true}}))
			}
			r.be.in <- frame(60, 1)
		}, func(s Stats) uint64 { return s.RxBadChains }, "too small for the headers; returned unused, later ones are counted\" virtio_type=1 buffer_bytes=16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &virtiotest.Log{}
			be := newFakeBackend()
			var backend interface {
				ReadFrame([]byte) (int, error)
				WriteFrame([]byte) error
				Close() error
			} = be
			if tc.down {
				backend = downBackend{be}
			}
			r := newRigLog(t, backend, slog.New(slog.NewTextHandler(log, nil)))
			r.be = be
			tc.drive(r)
			r.waitStat(tc.name, tc.stat, 2)
			deadline := time.Now().Add(virtiotest.Patience)
			for !strings.Contains(log.String(), tc.want) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			got := log.String()
			if !strings.Contains(got, tc.want) {
				t.Errorf("log does not say %q:\n%s", tc.want, got)
			}
			if n := strings.Count(got, "level=WARN"); n != 1 {
				t.Errorf("%d warnings for two of a kind, want 1:\n%s", n, got)
			}
		})
	}
}

// Lost sums the loss counters; String shows the traffic and only the
// losses that happened.
func TestStatsString(t *testing.T) {
	for _, tc := range []struct {
		s    Stats
		lost uint64
		want string
	}{
		{Stats{RxFrames: 3, RxBytes: 180, TxFrames: 2, TxBytes: 120}, 0,
			"received 3 frames (180 bytes), sent 2 frames (120 bytes)"},
		{Stats{RxFrames: 1, RxBytes: 60, RxTooLong: 4, TxErrors: 7}, 11,
			"received 1 frames (60 bytes), sent 0 frames (0 bytes); 4 received frames dropped, too long for the guest's receive buffers; 7 frames the backend failed to send"},
		{Stats{RxBadChains: 1, TxBadChains: 2, ReadErrors: 3}, 6,
			"received 0 frames (0 bytes), sent 0 frames (0 bytes); 1 receive buffers returned unused, too small for the headers; 2 frames not sent, malformed (no whole header, or too long); 3 failed backend reads"},
	} {
		if got := tc.s.Lost(); got != tc.lost {
			t.Errorf("%+v: Lost %d, want %d", tc.s, got, tc.lost)
		}
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: String\n%s\nwant\n%s", tc.s, got, tc.want)
		}
	}
}
