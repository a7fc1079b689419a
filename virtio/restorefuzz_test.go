package virtio_test

import (
	"encoding/binary"
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// FuzzRestore's guest: 64 KiB of memory holding two queues of 16 (the
// fake device's) at PFNs 1 and 3, every descriptor a 64-byte writable
// buffer at 0x8000 and every available slot naming its own descriptor,
// so that any index the fuzzer restores finds a well-formed chain; the
// fuzzer chooses each ring's avail.idx.
const (
	restoreMem    = 64 << 10
	restoreQSize  = 16
	restoreBufs   = 0x8000
	restoreBufLen = 64
	restoreMaxOps = 32
)

var restorePFNs = [2]uint32{1, 3}

// restoreTemplate is the guest memory every input starts from.
var restoreTemplate = func() []byte {
	mem := guestmem.New(make([]byte, restoreMem))
	for _, pfn := range restorePFNs {
		r, err := virtiotest.NewRing(mem, pfn, restoreQSize)
		if err != nil {
			panic(err)
		}
		for i := range uint16(restoreQSize) {
			r.WriteDesc(r.Desc, i, restoreBufs+restoreBufLen*uint64(i), restoreBufLen, virtio.DescWrite, 0)
			r.Publish(i)
		}
		r.SetAvailIdx(0)
	}
	return mem.Bytes()
}()

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// FuzzRestore restores fuzzed transport state into the fake device, as a
// machine restores each virtio device of a snapshot, and checks that a
// refused state changes nothing, and that an accepted one reads back as
// restored, keeps its rings in memory and its line at its ISR, and then
// survives the worker serving it and the guest driving its registers
// (ops: offset, value, width per three bytes): no panic, no access
// outside the device's configuration, and every state it reaches is one
// Restore accepts again (its checks refuse only what no guest can do).
func FuzzRestore(f *testing.F) {
	// A live device that served 3 requests on queue 0 (the state
	// TestRestoreServesQueuedRequests's snapshot takes), with an
	// interrupt pending; then 2 requests still queued; an index about to
	// wrap; a broken device; a ring the restored device finds corrupt;
	// and a device not set up.
	f.Add(uint32(5), uint8(7), uint8(1), uint16(1), true, false, uint32(1), uint16(3), uint16(3), uint16(3), uint32(3), uint16(0), uint16(0), uint16(0), []byte{19, 0, 1, 16, 0, 2})
	f.Add(uint32(5), uint8(7), uint8(0), uint16(0), false, false, uint32(1), uint16(1), uint16(1), uint16(3), uint32(3), uint16(2), uint16(2), uint16(2), []byte{})
	f.Add(uint32(1), uint8(7), uint8(0), uint16(0), false, false, uint32(1), uint16(0xFFFE), uint16(0xFFFE), uint16(1), uint32(3), uint16(0), uint16(0), uint16(0), []byte{16, 0, 2})
	f.Add(uint32(5), uint8(0x47), uint8(2), uint16(0), true, true, uint32(1), uint16(3), uint16(3), uint16(3), uint32(3), uint16(0), uint16(0), uint16(0), []byte{18, 0, 1, 18, 7, 1})
	f.Add(uint32(5), uint8(7), uint8(0), uint16(0), false, false, uint32(1), uint16(0), uint16(0), uint16(100), uint32(0), uint16(0), uint16(0), uint16(0), []byte{})
	f.Add(uint32(0), uint8(0), uint8(0), uint16(0), false, false, uint32(0), uint16(0), uint16(0), uint16(0), uint32(0), uint16(0), uint16(0), uint16(0), []byte{14, 0, 2, 8, 1, 4, 18, 7, 1, 16, 0, 2})
	f.Fuzz(func(t *testing.T, guest uint32, status, isr uint8, sel uint16, asserted, broken bool,
		pfn0 uint32, last0, used0, avail0 uint16, pfn1 uint32, last1, used1, avail1 uint16, ops []byte) {
		mem := guestmem.New(append([]byte(nil), restoreTemplate...))
		for i, idx := range []uint16{avail0, avail1} {
			avail := uint64(restorePFNs[i])*virtio.PageSize + 16*restoreQSize
			if err := mem.Write16(avail+2, idx); err != nil {
				t.Fatal(err)
			}
		}
		dev := newFakeDev()
		irq := virtiotest.NewIRQ()
		pd, err := virtio.NewPCIDevice(mem, dev, irq, discard)
		if err != nil {
			t.Fatal(err)
		}
		defer pd.Close()
		s := virtio.TransportState{Type: virtio.TypeNet, Guest: guest, Status: status, ISR: isr, Sel: sel,
			Asserted: asserted, Broken: broken, Queues: []virtio.QueueState{
				{PFN: pfn0, LastAvail: last0, UsedIdx: used0}, {PFN: pfn1, LastAvail: last1, UsedIdx: used1}}}
		fresh := pd.State()
		if err := pd.Restore(s); err != nil {
			if got := pd.State(); !reflect.DeepEqual(got, fresh) || len(irq.Levels()) != 0 || len(dev.activated) != 0 {
				t.Fatalf("Restore refused %+v (%v) but changed the device: %+v", s, err, got)
			}
			return
		}
		for i, q := range s.Queues {
			if q.PFN != 0 && mem.Check(uint64(q.PFN)*virtio.PageSize, virtio.RingBytes(restoreQSize)) != nil {
				t.Fatalf("queue %d restored with rings at PFN %#x, outside memory", i, q.PFN)
			}
		}
		if s.Status&virtio.StatusDriverOK == 0 || s.Broken {
			// Nothing runs on a device that is not live: the state
			// reads back as restored.
			if got := pd.State(); !reflect.DeepEqual(got, s) {
				t.Fatalf("restored %+v, reads back %+v", s, got)
			}
		}
		pd.Start() // as the VMM does once the machine is restored
		pd.Serve() // as the VMM's ioeventfd reader would
		check := func(when string) {
			resume := pd.Quiesce()
			defer resume()
			got := pd.State()
			if got.Asserted != irq.Level() {
				t.Fatalf("%s: state says asserted=%v, the line is %v", when, got.Asserted, irq.Level())
			}
			// A copy of the memory: the second device serves what it
			// restores, and must not change the first one's rings.
			again, err := virtio.NewPCIDevice(guestmem.New(append([]byte(nil), mem.Bytes()...)), newFakeDev(), nil, discard)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if err := again.Restore(got); err != nil {
				t.Fatalf("%s: the device reached %+v, which Restore refuses: %v", when, got, err)
			}
		}
		check("restored and served")

		drv := virtiotest.Driver{Regs: pd.BARDevice(0)}
		bar := uint64(pd.BARSize())
		for n := 0; len(ops) >= 3 && n < restoreMaxOps; n++ {
			off, v, w := uint64(ops[0])%bar, ops[1], ops[2]
			ops = ops[3:]
			n := []int{1, 2, 4}[w%3]
			buf := make([]byte, n)
			if w&0x80 != 0 {
				pd.BARDevice(0).Read(off, buf)
				continue
			}
			for i := range buf {
				buf[i] = v
			}
			if off == virtio.RegQueueNotify && n == 2 {
				binary.LittleEndian.PutUint16(buf, uint16(v)%3)
			}
			pd.BARDevice(0).Write(off, buf)
			pd.Serve()
		}
		check("driven")
		dev.mu.Lock()
		outside := dev.outside
		dev.mu.Unlock()
		if outside != 0 {
			t.Fatalf("%d configuration accesses outside the device's", outside)
		}
		// A reset takes everything down, whatever was restored.
		drv.Write8(virtio.RegStatus, 0)
		resume := pd.Quiesce()
		got := pd.State()
		resume()
		if got.Status != 0 || got.ISR != 0 || got.Asserted || got.Broken || irq.Level() {
			t.Fatalf("after a reset: %+v, line %v", got, irq.Level())
		}
		for i, q := range got.Queues {
			if q != (virtio.QueueState{}) {
				t.Fatalf("after a reset: queue %d %+v", i, q)
			}
		}
	})
}
