package vmm

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/virtio"
)

// The state section's fields part (since format version 5) is machineState's
// small, many-fielded part (the devices, the disks, the memory size) in
// a fixed binary layout, where version 4 had JSON: encoding/json's first
// use of these types cost a restore ~0.44 ms of its ~0.47 ms decode, in
// every fresh process. Integers are little-endian; int fields are
// int64; a bool is one byte, 0 or 1; a []byte or string is its u32
// length then its bytes; a slice is its u32 count then its elements.
// In order:
//
//	MemoryMiB, Protocol (1 multiboot, 2 NetBSD's handoff), VCPU.TSCKHz (u32), Ready
//	UART: RX ([]byte), then IER, LCR, MCR, LSRErr, SCR, DLL, DLM, FCR, MSR
//	  (one byte each), THRIntr, IRQHigh
//	RTC: Index (one byte), RAM (128 bytes, no length), Offset (nanoseconds),
//	  Held's Year, Month, Day, Hour, Min, Sec, Nsec
//	PCI: Addr (u32), Functions: Device, Space ([]byte, 256), Sizing (6 bools),
//	  Decoding (6 bools; version 7)
//	Virtio: Type (u16), Guest (u32), Status, ISR (u8), Sel (u16), Asserted, Broken,
//	  Queues: PFN (u32), LastAvail, UsedIdx (u16)
//	MACs (strings): one per virtio device, in Virtio's order: a network
//	  card's address as text, as net.HardwareAddr.String writes it
//	  ("52:54:00:12:34:56"), "" for a disk or other device
//	Disks: Path, ReadOnly, Serial, Size, Dev (u64), Inode (u64), MtimeNs,
//	  Content (text: "crc32c:" and 8 lower-case hex digits, contentDigest's,
//	  or "" when none was recorded)
//	the Disks' TakenNs, one each in Disks' order, no count: written only
//	  when a disk records one (0 for one that does not); a part that
//	  ends after Disks, as an older writer's does, records none
//
// An empty []byte, string list or slice decodes as nil. TakenNs follows
// the disks, not each disk's record, so that the part of a snapshot
// written before it was recorded still decodes as it did.

// encodeFields appends st's fields part to out.
func encodeFields(out []byte, st *machineState) []byte {
	w := fieldWriter{out}
	w.i64(int64(st.MemoryMiB))
	w.i64(int64(st.Protocol))
	w.u32(st.VCPU.TSCKHz)
	w.bool(st.Ready)
	u := &st.UART
	w.bytes(u.RX)
	w.b = append(w.b, u.IER, u.LCR, u.MCR, u.LSRErr, u.SCR, u.DLL, u.DLM, u.FCR, u.MSR)
	w.bool(u.THRIntr)
	w.bool(u.IRQHigh)
	r := &st.RTC
	w.b = append(w.b, r.Index)
	w.b = append(w.b, r.RAM[:]...)
	w.i64(int64(r.Offset))
	for _, v := range [...]int{r.Held.Year, r.Held.Month, r.Held.Day, r.Held.Hour, r.Held.Min, r.Held.Sec, r.Held.Nsec} {
		w.i64(int64(v))
	}
	w.u32(st.PCI.Addr)
	w.u32(uint32(len(st.PCI.Functions)))
	for _, f := range st.PCI.Functions {
		w.i64(int64(f.Device))
		w.bytes(f.Space)
		for _, s := range f.Sizing {
			w.bool(s)
		}
		for _, d := range f.Decoding {
			w.bool(d)
		}
	}
	w.u32(uint32(len(st.Virtio)))
	for _, v := range st.Virtio {
		w.u16(v.Type)
		w.u32(v.Guest)
		w.b = append(w.b, v.Status, v.ISR)
		w.u16(v.Sel)
		w.bool(v.Asserted)
		w.bool(v.Broken)
		w.u32(uint32(len(v.Queues)))
		for _, q := range v.Queues {
			w.u32(q.PFN)
			w.u16(q.LastAvail)
			w.u16(q.UsedIdx)
		}
	}
	w.u32(uint32(len(st.MACs)))
	for _, m := range st.MACs {
		w.bytes([]byte(m))
	}
	w.u32(uint32(len(st.Disks)))
	for _, d := range st.Disks {
		w.bytes([]byte(d.Path))
		w.bool(d.ReadOnly)
		w.bytes([]byte(d.Serial))
		w.i64(d.Size)
		w.u64(d.Dev)
		w.u64(d.Inode)
		w.i64(d.MtimeNs)
		w.bytes([]byte(d.Content))
	}
	if slices.ContainsFunc(st.Disks, func(d DiskIdentity) bool { return d.TakenNs != 0 }) {
		for _, d := range st.Disks {
			w.i64(d.TakenNs)
		}
	}
	return w.b
}

type fieldWriter struct{ b []byte }

func (w *fieldWriter) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *fieldWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *fieldWriter) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *fieldWriter) i64(v int64)  { w.u64(uint64(v)) }
func (w *fieldWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *fieldWriter) bytes(b []byte) {
	w.u32(uint32(len(b)))
	w.b = append(w.b, b...)
}

// decodeFields decodes what encodeFields encodes into st, refusing a
// part that ends early, has bytes after its last field, a bool that is
// neither 0 nor 1, an int out of int's range, or a count more than its
// bytes could hold; the error names the field.
func decodeFields(b []byte, st *machineState) error {
	r := fieldReader{b: b}
	st.MemoryMiB = r.int("MemoryMiB")
	st.Protocol = bootplan.Protocol(r.int("Protocol"))
	st.VCPU.TSCKHz = r.u32("TSCKHz")
	st.Ready = r.bool("Ready")
	u := &st.UART
	u.RX = r.bytes("UART RX")
	if p := r.take("UART registers", 9); p != nil {
		u.IER, u.LCR, u.MCR, u.LSRErr, u.SCR, u.DLL, u.DLM, u.FCR, u.MSR = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
	}
	u.THRIntr = r.bool("UART THRIntr")
	u.IRQHigh = r.bool("UART IRQHigh")
	rtc := &st.RTC
	if p := r.take("RTC Index", 1); p != nil {
		rtc.Index = p[0]
	}
	if p := r.take("RTC RAM", len(rtc.RAM)); p != nil {
		copy(rtc.RAM[:], p)
	}
	rtc.Offset = time.Duration(r.i64("RTC Offset"))
	h := &rtc.Held
	for _, p := range [...]*int{&h.Year, &h.Month, &h.Day, &h.Hour, &h.Min, &h.Sec, &h.Nsec} {
		*p = r.int("RTC Held")
	}
	st.PCI.Addr = r.u32("PCI Addr")
	if n := r.count("PCI functions", 8+4+6+6); n > 0 {
		st.PCI.Functions = make([]pci.FunctionState, n)
		for i := range st.PCI.Functions {
			f := &st.PCI.Functions[i]
			f.Device = r.int("PCI function Device")
			f.Space = r.bytes("PCI function Space")
			for j := range f.Sizing {
				f.Sizing[j] = r.bool("PCI function Sizing")
			}
			for j := range f.Decoding {
				f.Decoding[j] = r.bool("PCI function Decoding")
			}
		}
	}
	if n := r.count("virtio devices", 2+4+1+1+2+1+1+4); n > 0 {
		st.Virtio = make([]virtio.TransportState, n)
		for i := range st.Virtio {
			v := &st.Virtio[i]
			v.Type = r.u16("virtio Type")
			v.Guest = r.u32("virtio Guest")
			if p := r.take("virtio Status and ISR", 2); p != nil {
				v.Status, v.ISR = p[0], p[1]
			}
			v.Sel = r.u16("virtio Sel")
			v.Asserted = r.bool("virtio Asserted")
			v.Broken = r.bool("virtio Broken")
			if n := r.count("virtio queues", 8); n > 0 {
				v.Queues = make([]virtio.QueueState, n)
				for j := range v.Queues {
					q := &v.Queues[j]
					q.PFN = r.u32("virtio queue PFN")
					q.LastAvail = r.u16("virtio queue LastAvail")
					q.UsedIdx = r.u16("virtio queue UsedIdx")
				}
			}
		}
	}
	if n := r.count("MACs", 4); n > 0 {
		st.MACs = make([]string, n)
		for i := range st.MACs {
			st.MACs[i] = string(r.bytes("MAC"))
		}
	}
	if n := r.count("disks", 4+1+4+8*4+4); n > 0 {
		st.Disks = make([]DiskIdentity, n)
		for i := range st.Disks {
			d := &st.Disks[i]
			d.Path = string(r.bytes("disk Path"))
			d.ReadOnly = r.bool("disk ReadOnly")
			d.Serial = string(r.bytes("disk Serial"))
			d.Size = r.i64("disk Size")
			d.Dev = r.u64("disk Dev")
			d.Inode = r.u64("disk Inode")
			d.MtimeNs = r.i64("disk MtimeNs")
			d.Content = string(r.bytes("disk Content"))
		}
		if r.err == nil && len(r.b) != 0 {
			for i := range st.Disks {
				st.Disks[i].TakenNs = r.i64("disk TakenNs")
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("fields part: %d bytes after the last field", len(r.b))
	}
	return r.err
}

// fieldReader reads a fields part, keeping the first error; after one,
// every read returns zero.
type fieldReader struct {
	b   []byte
	err error
}

// take returns the next n bytes, or nil after an error or when fewer
// are left.
func (r *fieldReader) take(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("fields part: %s: %d bytes left, want %d", what, len(r.b), n)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *fieldReader) u16(what string) uint16 {
	if p := r.take(what, 2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *fieldReader) u32(what string) uint32 {
	if p := r.take(what, 4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *fieldReader) u64(what string) uint64 {
	if p := r.take(what, 8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *fieldReader) i64(what string) int64 { return int64(r.u64(what)) }

// int reads an int64 that must fit int.
func (r *fieldReader) int(what string) int {
	v := r.i64(what)
	if v < math.MinInt || v > math.MaxInt {
		if r.err == nil {
			r.err = fmt.Errorf("fields part: %s: %d out of range", what, v)
		}
		return 0
	}
	return int(v)
}

func (r *fieldReader) bool(what string) bool {
	p := r.take(what, 1)
	if p == nil {
		return false
	}
	if p[0] > 1 {
		r.err = fmt.Errorf("fields part: %s: %d is not a bool (0 or 1)", what, p[0])
		return false
	}
	return p[0] == 1
}

// bytes reads a length-prefixed byte string (nil when empty), a copy.
func (r *fieldReader) bytes(what string) []byte {
	n := r.u32(what)
	if r.err == nil && uint64(n) > uint64(len(r.b)) {
		r.err = fmt.Errorf("fields part: %s: %d bytes, %d left", what, n, len(r.b))
	}
	p := r.take(what, int(n))
	if n == 0 || p == nil {
		return nil
	}
	return append([]byte(nil), p...)
}

// count reads a slice's element count, refusing one whose elements, of
// at least size bytes each, the bytes left cannot hold.
func (r *fieldReader) count(what string, size int) int {
	n := r.u32(what)
	if r.err == nil && uint64(n)*uint64(size) > uint64(len(r.b)) {
		r.err = fmt.Errorf("fields part: %d %s in %d bytes", n, what, len(r.b))
		return 0
	}
	return int(n)
}
