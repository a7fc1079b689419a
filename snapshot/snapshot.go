// Package snapshot is the file format of a smolvmm machine snapshot: a
// fixed header, a state section (the machine's CPU and device state, opaque
// here) and the guest's memory, page-aligned so that a restore can map it
// copy-on-write instead of reading it.
//
// Layout, all integers little-endian:
//
//	offset  size  field
//	0       8     magic "SMOLSNAP"
//	8       4     format version (Version; a reader takes 8 too, below)
//	12      4     header size in bytes (HeaderSize)
//	16      8     guest memory size in bytes (a multiple of PageSize)
//	24      8     state section offset (HeaderSize)
//	32      8     state section length (at most MaxStateSize)
//	40      8     memory section offset (a multiple of PageSize, after the state)
//	48      32    SHA-256 over the header's bytes 0-47 and 80-127, then the state
//	              section: these 32 bytes are left out of it, not hashed as zero
//	80      4     memory digest: CRC-32C (Castagnoli) over, for each page of the
//	              memory section that is not all zero, its page number (8 bytes)
//	              then its 4096 bytes, in page order
//	84      1     machine flags: bit 0 set when the machine had a network
//	              card; the other bits zero
//	85      6     the first network card's MAC address as its guest last
//	              saw it; zero when the machine had no card (or the guest's
//	              address was not recorded)
//	91      16    the identity of the host's KVM that the state's record of
//	              its supported CPUID came from (package vmm's, opaque
//	              here); zero when it was not known
//	107     1     the network the card was on (Network; since version 9,
//	              zero in version 8): its kind (0 none recorded, 1 a user-mode
//	              network of the machine's own, 2 a shared one, 3 a
//	              tap) in bits 0-6, bit 7 set when bytes 112-127 hold
//	              the name's digest; zero when the machine had no card
//	              or the writer did not record it, and then bytes
//	              108-127 are zero too
//	108     4     the IPv4 address the network leased to the card's MAC;
//	              zero when not known
//	112     16    the shared network's or tap's name, NUL-padded, or, for
//	              a longer name, the first 16 bytes of its SHA-256; zero
//	              for a user-mode network of the machine's own
//	128     ...   state section, then zero padding to the memory offset
//	              (under a page; the reader checks it is zero)
//	memoff  ...   guest memory, byte for byte from guest physical address 0
//
// What is checked always, by Read (and Open, or OpenHeader then
// ReadState): the magic, the version, the header's fields, the SHA-256
// over the header (the memory digest included) and the state, that the
// padding after the state is zero (the digest does not cover it), and that
// the file ends where the memory section does (ErrTruncated before it,
// ErrCorrupt after it). A version outside OldestVersion to Version
// is refused with ErrVersion (and ErrOlderVersion below them,
// ErrNewerVersion above), unless the file is of one of them but for a
// damaged version field (its fields pass and its SHA-256 is right with
// that version there): that is ErrCorrupt. The memory
// itself is checked by VerifyMemory, which reads the file's data (not its holes)
// with pread, not through MapMemory's mapping: the mapping stays lazy,
// its pages shared with the page cache until the guest touches them.
// Package vmm's restore calls it by default, before any of the state is
// applied (vmm.SkipMemoryCheck opts out); without it, a corrupt memory
// page reaches the guest as it is.
//
// The memory digest is a CRC-32C, not a SHA-256, for its cost: the writer
// computes it while the guest is paused. Measured on the 2-core nested
// test host (SHA-NI and SSE4.2 both present; BenchmarkMemDigest), 256 MiB
// of non-zero memory takes ~199 ms with SHA-256 and ~51 ms with CRC-32C,
// the zero-page scan included. Pages of zeros are left out of the digest
// (the page numbers hashed with the others say which they were), so a
// mostly empty guest pays next to nothing with either: the demo guest's
// 128 MiB snapshot, 48 KiB of it non-zero, paused the guest no longer than
// before (medians of 10 alternating runs on the loaded host, 107 ms before
// and 91 ms after: noise). A guest that has touched its memory pays per
// non-zero page, ~200 ms per 256 MiB with SHA-256 against ~50 with the
// CRC. (A writer that knows which pages were never populated passes
// them to WriteKnown, which does not read them: vmm does, and the demo's
// pause went from ~51 ms, nearly all of it page faults of the zero-page
// scan, to ~2.3 ms.) VerifyMemory reads at the CRC's rate (~55-80 ms
// per 256 MiB of data) and reads only the data extents (SEEK_DATA,
// SEEK_HOLE): ~0.04 ms for the demo's snapshot, where reading 1 MiB from
// each data extent's start took 2.3-7 ms. A digest's first 512 KiB are
// hashed by table-driven code of this package, the rest by hash/crc32's
// CRC32 instruction, whose tables cost its first use in a process ~0.3-
// 0.4 ms: a restore of the demo guest spent more on them than on the
// rest of the check.
// The digest guards against accidental damage (a bad disk, a bit
// flip, a copy gone wrong), which a CRC detects (every error burst of up
// to 32 bits, and any other but one in 2^32); it does not authenticate
// the file, and neither does the header's SHA-256: whoever can write the
// file can rewrite both.
//
// Package vmm writes the state section in two binary parts (their
// layouts are in vmm/statefields.go and vmm/statecodec.go; since version
// 5 neither is JSON), all integers little-endian:
//
//	u32     the fields part's length N, then its N bytes
//	        14 entries, each a u32 length then that many bytes (0: none):
//	 1      kvm_regs (144 bytes)
//	 2      kvm_sregs (312)
//	 3      kvm_lapic_state (1024)
//	 4      kvm_vcpu_events (64)
//	 5      kvm_mp_state (4)
//	 6      kvm_debugregs (128)
//	 7      kvm_xsave (4096, or more: KVM_CAP_XSAVE2's size, AMX's state)
//	 8      kvm_xcrs (392)
//	 9      kvm_fpu (416)
//	10      kvm_pit_state2 (112)
//	11      kvm_clock_data (48)
//	12      the vCPU's MSRs, kvm_msr_entry each (16 bytes: u32 index, u32
//	        zero, u64 value)
//	13      the CPUID entries it was given (KVM_SET_CPUID2),
//	        kvm_cpuid_entry2 each (40 bytes: u32 function, index, flags,
//	        eax, ebx, ecx, edx, then 12 zero bytes)
//	14      the feature leaves of KVM's supported CPUID
//	        (KVM_GET_SUPPORTED_CPUID) they were checked against,
//	        kvm_cpuid_entry2 each; empty when it was not known
//	u32     the number of interrupt controllers (3), then each as a u32
//	        length and a kvm_irqchip (520 bytes): the master 8259, the
//	        slave 8259, the I/O APIC
//
// and nothing after. Entries 7 to 9 are always there: a vCPU whose KVM
// has KVM_CAP_XSAVE has kvm_xsave and kvm_xcrs and an empty kvm_fpu,
// one without has kvm_fpu alone. Each KVM structure is byte for byte as
// the kernel defines it on x86-64. The MSRs are, in this order and each
// only if the vCPU reads it, those KVM_GET_MSR_INDEX_LIST names, then,
// when the vCPU's CPUID has MTRRs (CPUID.1:EDX bit 12), the MTRRs that
// list does not name: MTRRdefType (0x2ff), the fixed ranges (0x250,
// 0x258, 0x259, 0x268-0x26f) when MTRRcap (0xfe) says it has them, and
// as many variable range pairs, base then mask, as MTRRcap counts
// (0x200-0x20f for KVM's 8).
//
// The fields part holds, in a fixed layout (each string and byte list
// its u32 length then its bytes, each list its u32 count then its
// elements, each bool one byte 0 or 1; vmm/statefields.go has it field
// by field), the memory size in MiB, the boot protocol, the vCPU's TSC
// frequency (KVM_GET_TSC_KHZ), whether the machine had reported itself
// ready, the UART's receive buffer and its
// registers (one byte each), the RTC's index register (one byte), CMOS
// RAM and the guest's clock offset, each PCI function's configuration
// space (BAR placement included) and which of its BARs decode, each
// virtio transport's registers and queues (PFN, last_avail, used index,
// pending ISR), each virtio device's network address (one per device,
// in the transports' order: a network card's MAC as text, six two-digit
// lower-case hex bytes joined by colons, "52:54:00:12:34:56"; empty for
// a disk or other device), each disk image's identity (path, size,
// device, inode, mtime and its content's FileDigest as the text
// "crc32c:" then 8 lower-case hex digits, empty when none was recorded),
// and then, for every disk, the host's wall-clock time just before its
// identity was taken (nanoseconds since the epoch, 0 for none), which a
// restore needs to tell an mtime that proves the image unchanged from
// one a write in the same tick of the file system's clock would have
// left as it was. A part that ends after the disks, as every writer's
// did before that time was recorded, records none; a reader from before
// it refuses a part that has it (bytes after its last field), and a
// restore reads such disks for their content. A reader refuses a part with bytes after the last field it knows, so
// no field can be added unseen: Version changes whenever that content
// changes, in meaning or in layout (what the MSR list holds included).
//
// Version 2 added the memory digest, the TSC frequency and the CPUID
// entries. Version 3 holds the CPUID entries and the MSRs as the kernel's
// structures too (arrays of kvm_cpuid_entry2 and kvm_msr_entry, base64 in
// the JSON, as the other KVM structures), where version 2 had JSON
// objects, which cost a restore ~0.4 ms to decode. Version 4 says in the
// header whether the machine had a network card, and its address (the
// state section says it too): a restore chooses its network from the
// header alone (OpenHeader), where it read and decoded the state twice,
// ~0.4 ms before the VM was begun. Its state section holds the KVM
// structures in binary after the JSON, where version 3 had them base64 in
// the JSON, most of its bytes and of the time a restore took to decode it
// (the demo guest's: 16.6 KB, now 12.9 KB of which 1.2 KB JSON). Version
// 5's state section has its first part in a fixed binary layout instead
// of JSON, whose decoding cost a restore ~0.44 ms (the demo's: 12.2 KB,
// 0.5 KB of it that part). Version 6 has the KVM identity in the header
// and, in the state section, the part of KVM's supported CPUID that the
// vCPU's was checked against: a restore on the same KVM (same identity)
// checks the snapshot's CPUID against that record instead of asking KVM,
// ~1 ms on a nested host, and decides whether to ask from the header
// alone. Version 7 says which BARs of each PCI function decode: one the
// guest moved over another device decodes nothing, even once that device
// moved away, which version 6's addresses alone could not tell. Version
// 8 has the vCPU's MTRRs among its MSRs, which KVM_GET_MSR_INDEX_LIST
// does not name: a version-7 file may hold none, and a restore of one
// left them 0 (NetBSD sets MTRRdefType at every boot); the MSR list's
// length varies anyway, so only the version can tell. A version-8 state
// also records a BAR decoding only with I/O decode on in its function's
// command register, where a version-7 file from before the command
// register was honoured could say one decodes with it off. A snapshot
// of an older version is refused (ErrVersion, and ErrOlderVersion), as
// any other version is: take the snapshot again; one of a newer version
// wraps ErrNewerVersion too.
//
// Version 9's header records the network the card was on (Network:
// bytes 107-127, zero in version 8, where they are reserved); its state
// section is version 8's. A reader takes both: a version-8 file, whose
// bytes 107-127 must be zero, reads as recording no network
// (NetUnknown) and restores as before. The version changed so that a
// smolvmm from before the record, which takes only version 8, refuses a
// file that has one as written by a newer smolvmm, not as corrupt
// (nonzero reserved bytes).
//
// Version 10's state section may record, after the disk identities,
// the moment each was taken (package vmm's): a restore trusts a disk's
// unchanged modification time only when it is older than that moment by
// more than a file system's clock tick. Its header is version 9's. A
// reader takes versions 8 to 10: its state decodes with or without the
// moments. The version changed so that a smolvmm from before them, which
// refuses a state part with bytes after the last field it knows, refuses
// such a file as written by a newer smolvmm, not as corrupt.
//
// Another format version, a bad magic, a digest mismatch and a short file
// are refused by Read (and Open, or OpenHeader then ReadState) with errors
// wrapping ErrVersion, ErrFormat, ErrCorrupt and ErrTruncated;
// Header.CheckMemory refuses another memory size (ErrMemorySize), and
// File.VerifyMemory a memory section whose digest differs (ErrCorrupt).
//
// Target replaces a snapshot file only with a complete snapshot, through
// temporaries beside it made in advance (for a process that later may not
// create files), refusing a file another machine or process holds locked (ErrInUse,
// naming it) and removing the temporaries of writers that were killed.
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/lockholder"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// Format constants.
const (
	Magic   = "SMOLSNAP"
	Version = 10
	// OldestVersion is the oldest version a reader takes, with every
	// one up to Version: version 8, whose header records no network and
	// whose state section is version 9's (version 10's without the disks'
	// moments).
	OldestVersion = 8
	HeaderSize    = 128
	PageSize      = 4096
	// MaxStateSize bounds the state section a reader accepts, so a corrupt
	// length cannot make it allocate without limit.
	MaxStateSize = 16 << 20
	// The header's SHA-256 lies at [digestOff, memDigestOff), the memory
	// digest at [memDigestOff, flagsOff), the machine's flags and MAC
	// address at [flagsOff, kvmOff), the KVM identity at [kvmOff,
	// netOff), the network record at [netOff, HeaderSize) (network.go).
	digestOff    = 48
	memDigestOff = 80
	flagsOff     = 84
	macOff       = 85
	kvmOff       = 91
	// flagNIC is the machine flags' bit for a network card.
	flagNIC = 1
)

// Errors a reader wraps.
var (
	ErrFormat  = errors.New("not a smolvmm snapshot")
	ErrVersion = errors.New("unsupported snapshot format version")
	// ErrNewerVersion is wrapped, with ErrVersion, by a reader's refusal
	// of a version above its own: a newer smolvmm wrote the snapshot.
	ErrNewerVersion = errors.New("written by a newer smolvmm")
	// ErrOlderVersion is wrapped, with ErrVersion, by a reader's refusal
	// of a version from 1 to below OldestVersion: an older smolvmm wrote
	// the snapshot, whose state this one would restore wrong or not at
	// all.
	ErrOlderVersion = errors.New("written by an older smolvmm")
	ErrCorrupt      = errors.New("snapshot is corrupt")
	ErrTruncated    = errors.New("snapshot is truncated")
	ErrMemorySize   = errors.New("snapshot memory size differs")
)

// Header is a snapshot's fixed header (the layout is in the package doc).
type Header struct {
	// Version is the file's format version, from OldestVersion (no
	// network recorded) to Version, the only ones a reader takes.
	Version uint32
	// MemSize is the guest memory's size in bytes, a multiple of PageSize.
	MemSize uint64
	// StateOff is the state section's offset in bytes: HeaderSize.
	StateOff uint64
	// StateLen is the state section's length in bytes, at most
	// MaxStateSize.
	StateLen uint64
	// MemOff is the memory section's offset in bytes: the first page
	// boundary after the state section.
	MemOff uint64
	// Digest is the SHA-256 over the header's bytes but its own and then
	// the state section; it does not cover the padding or the memory.
	Digest [sha256.Size]byte
	// MemDigest is the memory section's CRC-32C (see the package doc),
	// which File.VerifyMemory checks.
	MemDigest uint32
	// NIC is what the snapshot's machine had of a network card.
	NIC NIC
	// KVM identifies the host's KVM whose supported CPUID the state
	// records (package vmm's identity; zero: not known), so that a
	// restore can tell from the header alone whether it runs on that
	// KVM. Unverified until the state is read (ReadState), as the rest
	// of the header.
	KVM KVMID
	// Net is the network the machine's card was on (NetUnknown: not
	// recorded). Unverified until the state is read, as the rest.
	Net Network
}

// KVMID is the identity of a host's KVM as package vmm reads it, opaque
// here; zero is none.
type KVMID [16]byte

// Meta is what a snapshot's header says of its machine besides the
// sections' sizes and digests.
type Meta struct {
	// NIC is what the machine had of a network card (Header.NIC).
	NIC NIC
	// KVM identifies the host's KVM the state's CPUID record came from
	// (Header.KVM).
	KVM KVMID
	// Net is the network the machine's card was on (Header.Net); zero
	// when not known (package vmm's snapshot takes it from
	// Config.SnapshotNetwork).
	Net Network
}

// NIC is what a snapshot's header says of its machine's network card, so
// that a restore can choose its network (which must give the machine the
// same devices) before reading the state section. The state section says
// it too: package vmm refuses a snapshot whose two accounts differ. Until
// the state is read (ReadState), the header, NIC included, is unverified.
type NIC struct {
	// Present says the machine had a network card.
	Present bool
	// MAC is the first card's address as its guest last saw it; zero
	// when the machine had no card or the address was not recorded.
	MAC [6]byte
}

// CheckMemory refuses a snapshot whose memory is not size bytes, with a
// *MemorySizeError.
func (h Header) CheckMemory(size uint64) error {
	if h.MemSize != size {
		return &MemorySizeError{Snapshot: h.MemSize, Asked: size}
	}
	return nil
}

// MemorySizeError is CheckMemory's refusal, with both sizes, so that a
// caller can name the size to ask for. It wraps ErrMemorySize.
type MemorySizeError struct {
	Snapshot uint64 // the snapshot's memory, in bytes
	Asked    uint64 // the memory asked for, in bytes
}

// Error says both sizes, in MiB.
func (e *MemorySizeError) Error() string {
	return fmt.Sprintf("%v: %d MiB in the snapshot, %d MiB asked for", ErrMemorySize, e.Snapshot>>20, e.Asked>>20)
}

// Unwrap returns ErrMemorySize.
func (e *MemorySizeError) Unwrap() error { return ErrMemorySize }

func alignUp(n uint64) uint64 { return (n + PageSize - 1) &^ (PageSize - 1) }

// validMemSize reports whether a snapshot may hold size bytes of memory:
// the writer and the reader keep one rule, so that no file written is
// refused when read.
func validMemSize(size uint64) bool {
	return size%PageSize == 0 && size != 0 && size <= 1<<40
}

func (h Header) encode() ([]byte, error) {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], h.Version)
	le.PutUint32(b[12:], HeaderSize)
	le.PutUint64(b[16:], h.MemSize)
	le.PutUint64(b[24:], h.StateOff)
	le.PutUint64(b[32:], h.StateLen)
	le.PutUint64(b[40:], h.MemOff)
	copy(b[digestOff:], h.Digest[:])
	le.PutUint32(b[memDigestOff:], h.MemDigest)
	if h.NIC.Present {
		b[flagsOff] |= flagNIC
	}
	copy(b[macOff:], h.NIC.MAC[:])
	copy(b[kvmOff:], h.KVM[:])
	if err := encodeNet(b, h.Net, h.NIC); err != nil {
		return nil, err
	}
	return b, nil
}

// digest is the SHA-256 over the header, but for the digest's own bytes,
// and the state.
func digest(head, state []byte) [sha256.Size]byte {
	s := sha256.New()
	s.Write(head[:digestOff])
	s.Write(head[memDigestOff:])
	s.Write(state)
	var d [sha256.Size]byte
	copy(d[:], s.Sum(nil))
	return d
}

// Write writes a snapshot of a machine with nic, state and mem to w and
// returns the bytes written (holes included). mem's length must be a
// positive multiple of PageSize, at most 1 TiB. A reader takes the
// snapshot from its file's first byte to its last: a writer that can
// seek is refused unless at offset 0, and a regular file unless empty
// (a new or truncated *os.File). Such a file gets holes for pages of
// zeros; a file opened O_APPEND gets them written. A short write without
// an error fails the snapshot with io.ErrShortWrite.
func Write(w io.Writer, nic NIC, state, mem []byte) (int64, error) {
	return WriteKnown(w, nic, state, mem, nil)
}

// WriteKnown is Write for a caller that knows pages of mem to be zero
// without reading them: Write reads every page to find the zero ones,
// which costs a page fault for each page never populated; WriteKnown
// takes the pages in zero as zero and reads only the others. The caller
// must be right: a page in zero that is not all zero is written as zeros.
// zero may be nil (nothing known), or shorter than mem's pages.
func WriteKnown(w io.Writer, nic NIC, state, mem []byte, zero PageSet) (int64, error) {
	return WriteMeta(w, Meta{NIC: nic}, state, mem, zero)
}

// WriteMeta is WriteKnown with the header's meta, the KVM identity
// included.
func WriteMeta(w io.Writer, meta Meta, state, mem []byte, zero PageSet) (int64, error) {
	nic := meta.NIC
	if !nic.Present && nic.MAC != ([6]byte{}) {
		return 0, fmt.Errorf("network card address %x for a machine without a network card", nic.MAC)
	}
	// Checked before memory is read: the header is encoded after.
	if err := meta.Net.Check(nic); err != nil {
		return 0, err
	}
	if !validMemSize(uint64(len(mem))) {
		return 0, fmt.Errorf("memory size %#x is not a positive multiple of the page size of at most 1 TiB (a reader refuses any other)", len(mem))
	}
	if len(state) > MaxStateSize {
		return 0, fmt.Errorf("state section of %d bytes exceeds %d", len(state), MaxStateSize)
	}
	// A file opened O_APPEND writes at its end wherever its offset is:
	// a seek there leaves no hole (the pages after it would land in its
	// place), and a snapshot after the bytes it holds is one no reader
	// finds. Such a file gets every page written, and only when empty.
	appending := appendOnly(w)
	if appending {
		if st, ok := w.(interface{ Stat() (os.FileInfo, error) }); ok {
			if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
				return 0, fmt.Errorf("file opened for appending (O_APPEND) holds %d bytes: a snapshot is read from the start of its file, and would be written after them", fi.Size())
			}
		}
	}
	if err := checkStart(w); err != nil {
		return 0, err
	}
	// One pass over memory finds the zero pages, for the digest and for
	// the holes below.
	zero = zeroPages(mem, zero)
	h := Header{Version: Version, MemSize: uint64(len(mem)), StateOff: HeaderSize,
		StateLen: uint64(len(state)), MemOff: alignUp(HeaderSize + uint64(len(state))),
		MemDigest: memDigest(mem, zero), NIC: nic, KVM: meta.KVM, Net: meta.Net}
	head, err := h.encode()
	if err != nil {
		return 0, err
	}
	h.Digest = digest(head, state)
	head, _ = h.encode()
	pad := make([]byte, h.MemOff-HeaderSize-h.StateLen)
	var n int64
	for _, part := range [][]byte{head, state, pad} {
		k, err := writeFull(w, part)
		n += int64(k)
		if err != nil {
			return n, fmt.Errorf("write snapshot at offset %d: %w", n, err)
		}
	}
	ws, sparse := w.(io.WriteSeeker)
	sparse = sparse && !appending
	if sparse {
		// A seekable file gets holes for the pages that are all zero
		// (most of a guest's memory, usually): they cost no write and no
		// disk, and read back as zeros. A file that cannot seek from here
		// gets them written.
		pos, err := ws.Seek(0, io.SeekCurrent)
		if err != nil {
			sparse = false
		}
		// Holes over old bytes would keep them: only past the end.
		if st, ok := w.(interface{ Stat() (os.FileInfo, error) }); ok {
			if fi, err := st.Stat(); err != nil || fi.Size() > pos {
				sparse = false
			}
		} else {
			sparse = false
		}
	}
	// Runs of pages, zero or not. Zero pages are not read from mem (a
	// page known zero may be one never populated, which a read would
	// populate): they become holes, or are written from zeros.
	var zeros []byte
	for off := 0; off < len(mem); {
		zeroRun := zero.Has(off / PageSize)
		end := off + PageSize
		for end < len(mem) && zero.Has(end/PageSize) == zeroRun {
			end += PageSize
		}
		if !zeroRun {
			k, err := writeFull(w, mem[off:end])
			n += int64(k)
			if err != nil {
				return n, fmt.Errorf("write snapshot at offset %d: %w", n, err)
			}
			off = end
			continue
		}
		if sparse {
			// The last page is always written, so the file has its
			// full size.
			skip := end - off
			if end == len(mem) {
				skip -= PageSize
			}
			if skip > 0 {
				if _, err := ws.Seek(int64(skip), io.SeekCurrent); err != nil {
					return n, fmt.Errorf("seek snapshot at offset %d: %w", n, err)
				}
				n += int64(skip)
				off += skip
			}
		}
		if off < end && zeros == nil {
			zeros = make([]byte, 64*PageSize)
		}
		for off < end {
			k, err := writeFull(w, zeros[:min(len(zeros), end-off)])
			n += int64(k)
			if err != nil {
				return n, fmt.Errorf("write snapshot at offset %d: %w", n, err)
			}
			off += k
		}
	}
	return n, nil
}

// checkStart refuses a seekable writer that is not at its start, or a
// regular file that holds bytes already: a reader takes a snapshot from
// its file's first byte to its last, so one written after other bytes is
// found by none, and one written over a longer file would be followed by
// the rest of it (a second snapshot into the same file, written after
// the first, left a file whose reader got the first). A writer that
// cannot seek (a pipe) is written where it is.
func checkStart(w io.Writer) error {
	s, ok := w.(io.Seeker)
	if !ok {
		return nil
	}
	pos, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	if pos != 0 {
		return fmt.Errorf("the writer is at offset %d, not at the start of its file, where a reader looks for the snapshot: write it to a new or truncated file", pos)
	}
	st, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return nil
	}
	if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		return fmt.Errorf("the file holds %d bytes already, which would be left after a shorter snapshot or mixed with it: write it to a new or truncated file", fi.Size())
	}
	return nil
}

// writeFull writes p to w: a short count without an error is
// io.ErrShortWrite, as io.Copy has it, so that a writer making no
// progress fails the snapshot instead of being asked forever, and one
// that drops bytes does not leave a snapshot reported whole.
func writeFull(w io.Writer, p []byte) (int, error) {
	k, err := w.Write(p)
	switch {
	case k < 0 || k > len(p):
		return 0, fmt.Errorf("the writer reported %d bytes written of %d", k, len(p))
	case k < len(p) && err == nil:
		err = io.ErrShortWrite
	}
	return k, err
}

// appendOnly reports whether w is a file opened O_APPEND (fcntl
// F_GETFL), through SyscallConn: Fd would put a pipe in blocking mode,
// where a write deadline no longer interrupts it.
func appendOnly(w io.Writer) bool {
	c, ok := w.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		return false
	}
	return flags&unix.O_APPEND != 0
}

// PageSet is a set of page numbers, a bit each: page i is bit i%64 of
// word i/64.
type PageSet []uint64

// NewPageSet returns an empty set for pages 0 to n-1.
func NewPageSet(n int) PageSet { return make(PageSet, (n+63)/64) }

// Has reports whether page is in the set (false past its end).
func (s PageSet) Has(page int) bool {
	return page/64 < len(s) && s[page/64]&(1<<(page%64)) != 0
}

// Add puts page, which must be below the set's size, in the set.
func (s PageSet) Add(page int) { s[page/64] |= 1 << (page % 64) }

// zeroPages returns the pages of mem that are all zero: those in known,
// which it does not read, and those it finds so.
func zeroPages(mem []byte, known PageSet) PageSet {
	n := len(mem) / PageSize
	s := NewPageSet(n)
	for i := range n {
		if known.Has(i) || isZero(mem[i*PageSize:(i+1)*PageSize]) {
			s.Add(i)
		}
	}
	return s
}

// castagnoli is CRC-32C's table, made on first use: every VM start loads
// this package, few write or verify a snapshot.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// memHash accumulates the memory digest, a page at a time.
type memHash struct {
	crc    uint32
	num    [8]byte
	hashed int // bytes, up to softCRCBytes (crc.go)
}

// page adds page number n with bytes p, which are not all zero.
func (d *memHash) page(n uint64, p []byte) {
	binary.LittleEndian.PutUint64(d.num[:], n)
	if d.hashed < softCRCBytes {
		d.crc = softUpdate(softUpdate(d.crc, d.num[:]), p)
		d.hashed += len(d.num) + len(p)
		return
	}
	t := castagnoli()
	d.crc = crc32.Update(d.crc, t, d.num[:])
	d.crc = crc32.Update(d.crc, t, p)
}

// memDigest is the digest of mem, whose zero pages are zero.
func memDigest(mem []byte, zero PageSet) uint32 {
	var d memHash
	for i := range len(mem) / PageSize {
		if !zero.Has(i) {
			d.page(uint64(i), mem[i*PageSize:(i+1)*PageSize])
		}
	}
	return d.crc
}

// isZero reports whether the page p is all zero bytes.
func isZero(p []byte) bool {
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// Read reads and checks a snapshot's header and state section from r, a
// file of size bytes, and checks that the memory section is all there and
// nothing follows it.
func Read(r io.ReaderAt, size int64) (Header, []byte, error) {
	h, head, err := readHeader(r)
	if err != nil {
		return h, nil, err
	}
	state, err := readState(r, size, h, head)
	return h, state, err
}

// readHeader reads the fixed header and checks its fields, all but the
// digest, which covers the state too. It returns the header's bytes for
// the digest. A header of another version is refused as such, unless it
// is a damaged one of this version (damagedVersion), which reads the
// state to tell.
func readHeader(r io.ReaderAt) (Header, []byte, error) {
	var h Header
	head := make([]byte, HeaderSize)
	if n, err := r.ReadAt(head, 0); n < HeaderSize {
		// A file shorter than the magic is a snapshot cut short only
		// if it starts as one.
		if m := min(n, len(Magic)); n > 0 && string(head[:m]) != Magic[:m] {
			return h, nil, fmt.Errorf("%w: bad magic %q", ErrFormat, head[:m])
		}
		if err == nil || err == io.EOF {
			if n == 0 {
				return h, nil, fmt.Errorf("%w: the file is empty", ErrFormat)
			}
			return h, nil, fmt.Errorf("%w: header is %d bytes, want %d", ErrTruncated, n, HeaderSize)
		}
		return h, nil, fmt.Errorf("read header: %w", err)
	}
	if string(head[:len(Magic)]) != Magic {
		return h, nil, fmt.Errorf("%w: bad magic %q", ErrFormat, head[:len(Magic)])
	}
	if v := binary.LittleEndian.Uint32(head[8:]); !knownVersion(v) {
		h.Version = v
		if err := damagedVersion(r, head); err != nil {
			return h, nil, err
		}
		if v > Version {
			return h, nil, fmt.Errorf("%w: version %d, this reader knows versions %d to %d: %w", ErrVersion, v, OldestVersion, Version, ErrNewerVersion)
		}
		if v >= 1 {
			return h, nil, fmt.Errorf("%w: version %d, this reader knows versions %d to %d: %w", ErrVersion, v, OldestVersion, Version, ErrOlderVersion)
		}
		return h, nil, fmt.Errorf("%w: version %d, this reader knows versions %d to %d", ErrVersion, v, OldestVersion, Version)
	}
	h, err := headerFields(head)
	if err != nil {
		return h, nil, err
	}
	return h, head, nil
}

// knownVersion reports whether a reader takes version v.
func knownVersion(v uint32) bool { return v >= OldestVersion && v <= Version }

// damagedVersion refuses (ErrCorrupt) head, of a version this reader
// does not take, when it is the header of one it takes (OldestVersion
// to Version) but for the version field: with that version there, its
// fields pass and its SHA-256 is the one over it and the state its fields
// place, which no file of another version has (its digest, if any,
// covers its own version). A bit flip there read as "written by a newer
// smolvmm". Of a file of another version, whose layout may be any, it
// reads nothing unless its bytes pass as a known version's header, and
// then no more than the state that header bounds (MaxStateSize, read
// once: every version places it alike); any read error leaves the
// verdict to the version.
func damagedVersion(r io.ReaderAt, head []byte) error {
	var state []byte
	for v := uint32(Version); v >= OldestVersion; v-- {
		fixed := bytes.Clone(head)
		binary.LittleEndian.PutUint32(fixed[8:], v)
		h, err := headerFields(fixed)
		if err != nil {
			continue
		}
		if state == nil {
			state = make([]byte, h.StateLen)
			if n, _ := r.ReadAt(state, int64(h.StateOff)); n < len(state) {
				return nil
			}
		}
		if digest(fixed, state) != h.Digest {
			continue
		}
		return fmt.Errorf("%w: version field damaged (header bytes 8-11 say version %d): the SHA-256 over the header and state matches them with version %d: the file is otherwise a version-%d snapshot",
			ErrCorrupt, binary.LittleEndian.Uint32(head[8:]), v, v)
	}
	return nil
}

// headerFields decodes head, a header of a version the reader takes with
// the magic checked, and checks its fields but the digest.
func headerFields(head []byte) (Header, error) {
	le := binary.LittleEndian
	h := Header{Version: le.Uint32(head[8:])}
	if hs := le.Uint32(head[12:]); hs != HeaderSize {
		return h, fmt.Errorf("%w: header size %d, want %d", ErrCorrupt, hs, HeaderSize)
	}
	h.MemSize = le.Uint64(head[16:])
	h.StateOff = le.Uint64(head[24:])
	h.StateLen = le.Uint64(head[32:])
	h.MemOff = le.Uint64(head[40:])
	copy(h.Digest[:], head[digestOff:memDigestOff])
	h.MemDigest = le.Uint32(head[memDigestOff:])
	h.NIC.Present = head[flagsOff]&flagNIC != 0
	copy(h.NIC.MAC[:], head[macOff:kvmOff])
	copy(h.KVM[:], head[kvmOff:netOff])
	if h.Version == OldestVersion {
		// Reserved then: a smolvmm of that version wrote zeros.
		if !bytes.Equal(head[netOff:], make([]byte, HeaderSize-netOff)) {
			return h, fmt.Errorf("%w: reserved header bytes %d-%d of a version-%d snapshot are not zero", ErrCorrupt, netOff, HeaderSize-1, OldestVersion)
		}
	} else {
		var err error
		if h.Net, err = decodeNet(head, h.NIC); err != nil {
			return h, err
		}
	}
	switch {
	case head[flagsOff]&^flagNIC != 0:
		return h, fmt.Errorf("%w: machine flags %#x in header byte %d, only bit 0 is defined", ErrCorrupt, head[flagsOff], flagsOff)
	case !h.NIC.Present && h.NIC.MAC != ([6]byte{}):
		return h, fmt.Errorf("%w: network card address %x in the header of a machine without a network card", ErrCorrupt, h.NIC.MAC)
	case h.StateOff != HeaderSize:
		return h, fmt.Errorf("%w: state offset %d, want %d", ErrCorrupt, h.StateOff, HeaderSize)
	case h.StateLen > MaxStateSize:
		return h, fmt.Errorf("%w: state length %d exceeds %d", ErrCorrupt, h.StateLen, MaxStateSize)
	case h.MemOff != alignUp(h.StateOff+h.StateLen):
		return h, fmt.Errorf("%w: memory offset %#x, want %#x (the page after the state)", ErrCorrupt, h.MemOff, alignUp(h.StateOff+h.StateLen))
	case !validMemSize(h.MemSize):
		return h, fmt.Errorf("%w: memory size %#x is not a positive multiple of the page size of at most 1 TiB", ErrCorrupt, h.MemSize)
	}
	return h, nil
}

// readState reads the state section h places, checks the digest over
// head and the state, and that the file (size bytes) holds the memory
// section.
//
// The zero padding between the state and the memory section is read with
// the state, in the same read (readHeader has placed the memory on the
// page after the state, so it is under a page), and must be zero: the
// digest does not cover it, so a byte changed there would otherwise go
// unnoticed.
func readState(r io.ReaderAt, size int64, h Header, head []byte) ([]byte, error) {
	buf := make([]byte, h.MemOff-h.StateOff)
	state, pad := buf[:h.StateLen], buf[h.StateLen:]
	if n, err := r.ReadAt(buf, int64(h.StateOff)); n < len(buf) {
		if n < len(state) && (err == nil || err == io.EOF) {
			return nil, fmt.Errorf("%w: state section ends at byte %d, want %d", ErrTruncated, int64(h.StateOff)+int64(n), h.StateOff+h.StateLen)
		}
		if err == nil || err == io.EOF {
			return nil, fmt.Errorf("%w: file ends at byte %d, in the padding before the memory section at %#x", ErrTruncated, int64(h.StateOff)+int64(n), h.MemOff)
		}
		return nil, fmt.Errorf("read state section: %w", err)
	}
	for i, b := range pad {
		if b != 0 {
			return nil, fmt.Errorf("%w: padding byte %d (between the state and the memory section at %#x) is not zero", ErrCorrupt, h.StateOff+h.StateLen+uint64(i), h.MemOff)
		}
	}
	if d := digest(head, state); d != h.Digest {
		return nil, fmt.Errorf("%w: SHA-256 of header and state is %x, the header says %x", ErrCorrupt, d, h.Digest)
	}
	if err := checkSize(size, h); err != nil {
		return nil, err
	}
	return state, nil
}

// checkSize refuses a file of size bytes that ends before h's memory
// section does, or after it: bytes past a snapshot are not one's (a
// snapshot written over the start of a longer file, or before another).
func checkSize(size int64, h Header) error {
	if want := h.MemOff + h.MemSize; size < 0 || uint64(size) < want {
		return fmt.Errorf("%w: file is %d bytes, its memory section ends at %d", ErrTruncated, size, want)
	} else if uint64(size) > want {
		return fmt.Errorf("%w: file is %d bytes, but its memory section ends at %d: the bytes after it are no part of the snapshot", ErrCorrupt, size, want)
	}
	return nil
}

// File is an open snapshot. Open checks its header and state; OpenHeader
// its header alone, and ReadState then the rest.
type File struct {
	// Header is the file's header: its fields checked when opened, its
	// digest once the state is read (by Open, or by ReadState).
	Header Header
	// State is the state section, set once checked (by Open, or by
	// ReadState after OpenHeader).
	State []byte
	Path  string // the file's name as given to Open or OpenHeader
	f     *os.File
	size  int64
	head  []byte // the header's bytes, for ReadState's digest
}

// Open opens and checks the snapshot at path.
func Open(path string) (*File, error) {
	s, err := OpenHeader(path)
	if err != nil {
		return nil, err
	}
	if err := s.ReadState(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenHeader opens the snapshot at path and checks its header's fields,
// without reading the state section (but for a header of another
// version, to tell a damaged version field): ReadState does that, and may run on
// another goroutine while MapMemory maps the memory, so that a restore
// reads and decodes the state while it creates the VM. Until ReadState
// has returned nil, the header is unverified (the digest covers it with
// the state): nothing may run on what the file holds.
func OpenHeader(path string) (*File, error) {
	// A regular file only: the memory section is mapped, and a FIFO
	// would block the open until a writer came.
	f, size, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	h, head, err := readHeader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return &File{Header: h, Path: path, f: f, size: size, head: head}, nil
}

// ReadState reads the state section of a File from OpenHeader, checks
// the digest over the header and the state and that the file holds the
// memory section and ends with it, and sets State. It may run
// concurrently with MapMemory.
func (s *File) ReadState() error {
	state, err := readState(s.f, s.size, s.Header, s.head)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Path, err)
	}
	s.State = state
	return nil
}

// MapMemory maps the memory section privately: the guest's writes go to
// its own copies of the pages, never to the file, and the pages it never
// touches are shared with every other mapping of the file. Unmap it with
// unix.Munmap. It refuses a file that ends before the memory section
// does, whose missing pages would fault (SIGBUS) when touched.
func (s *File) MapMemory() ([]byte, error) {
	if err := checkSize(s.size, s.Header); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", s.Path, err)
	}
	// A 32-bit process's int would wrap: 4 GiB and a page mapped one page.
	if s.Header.MemSize > math.MaxInt {
		return nil, fmt.Errorf("snapshot %s: its %d MiB of memory do not fit a %d-bit process's address space, which maps at most %d MiB in one piece",
			s.Path, s.Header.MemSize>>20, strconv.IntSize, math.MaxInt>>20)
	}
	mem, err := unix.Mmap(int(s.f.Fd()), int64(s.Header.MemOff), int(s.Header.MemSize),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: mmap memory section: %w", s.Path, err)
	}
	return mem, nil
}

// VerifyMemory reads the memory section and checks it against the
// header's memory digest, refusing a mismatch with an error wrapping
// ErrCorrupt. It reads the file's data, skipping its holes (which read
// as zeros), with pread: a mapping of the memory (MapMemory) is left as
// it was. It needs a header verified by ReadState (or Open) first.
func (s *File) VerifyMemory() error {
	if s.State == nil {
		return fmt.Errorf("snapshot %s: memory digest not checked: the header is not verified yet (ReadState first)", s.Path)
	}
	if err := checkSize(s.size, s.Header); err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Path, err)
	}
	d, err := readMemDigest(s.f, s.Header, dataAfter(s.f))
	if err != nil {
		return fmt.Errorf("snapshot %s: read memory section: %w", s.Path, err)
	}
	if d != s.Header.MemDigest {
		return fmt.Errorf("snapshot %s: %w: memory section's CRC-32C is %08x, the header says %08x (the memory section changed after the snapshot was written)", s.Path, ErrCorrupt, d, s.Header.MemDigest)
	}
	return nil
}

// dataAfter returns, for a file that can say where its holes are, the
// extent of data at or after an offset: where it begins and where the
// next hole begins (io.EOF when no data follows); nil when it cannot.
func dataAfter(f *os.File) func(off int64) (start, end int64, err error) {
	fd := int(f.Fd())
	return func(off int64) (int64, int64, error) {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return 0, 0, io.EOF
		}
		if err != nil {
			return 0, 0, err
		}
		// The end of the file is a hole too: SEEK_HOLE finds one.
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		return start, end, err
	}
}

// readMemDigest computes the digest of h's memory section in r. data,
// if not nil, tells where the file's data is (see dataAfter): the pages
// of a hole are zero, left out of the digest without reading them.
func readMemDigest(r io.ReaderAt, h Header, data func(off int64) (int64, int64, error)) (uint32, error) {
	d, err := readDigest(r, h.MemOff, h.MemSize, data)
	if err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("%w: memory section ends before byte %d", ErrTruncated, h.MemOff+h.MemSize)
	}
	return d, err
}

// readDigest computes the digest of the size bytes of r at base: a
// CRC-32C over each block of PageSize bytes (the last one may be
// shorter) that is not all zero, its number (8 bytes) then its bytes.
// data is as for readMemDigest: only the pages that hold data are read,
// not the holes between them. A section that ends early is
// io.ErrUnexpectedEOF.
func readDigest(r io.ReaderAt, base, size uint64, data func(off int64) (int64, int64, error)) (uint32, error) {
	const chunk = 256 * PageSize
	buf := make([]byte, min(chunk, alignUp(size)))
	var d memHash
	// extentEnd is where the data extent being read ends (the page
	// holding that byte is read whole); ^0 when not known.
	extentEnd := ^uint64(0)
	for page := uint64(0); page*PageSize < size; {
		off := base + page*PageSize
		if data != nil && off >= extentEnd {
			extentEnd = ^uint64(0)
		}
		if data != nil && extentEnd == ^uint64(0) {
			start, end, err := data(int64(off))
			switch {
			case err == io.EOF:
				return d.crc, nil // a hole to the end
			case err != nil:
				data = nil // no hole information: read it all
			case uint64(start) >= off+PageSize:
				// Only pages wholly in the hole are skipped.
				page = (uint64(start) - base) / PageSize
				continue
			default:
				extentEnd = uint64(end)
			}
		}
		n := min(chunk, size-page*PageSize)
		if extentEnd != ^uint64(0) && extentEnd > off {
			n = min(n, alignUp(extentEnd-off))
		}
		if k, err := r.ReadAt(buf[:n], int64(off)); uint64(k) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		for i := uint64(0); i < n; i += PageSize {
			if p := buf[i:min(i+PageSize, n)]; !isZero(p) {
				d.page(page+i/PageSize, p)
			}
		}
		page += (n + PageSize - 1) / PageSize
	}
	return d.crc, nil
}

// FileDigest is the digest of the first size bytes of f, computed as the
// memory digest is (see the package doc): a CRC-32C over each 4 KiB block
// that is not all zero, its number then its bytes (the last block may be
// shorter). The file's holes are skipped without reading them, so a
// sparse copy and a full one of the same bytes have one digest. It reads
// with ReadAt (pread) but finds holes with lseek, which moves f's offset:
// for files read and written at explicit offsets. Package vmm
// records it for each disk image in a snapshot, so that a restore can
// accept a copy of the image.
func FileDigest(f *os.File, size int64) (uint32, error) {
	if size < 0 {
		return 0, fmt.Errorf("%s: digest of %d bytes", f.Name(), size)
	}
	d, err := readDigest(f, 0, uint64(size), dataAfter(f))
	if err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("%s: file ends before byte %d: %w", f.Name(), size, err)
	} else if err != nil {
		err = fmt.Errorf("%s: %w", f.Name(), err)
	}
	return d, err
}

// Close closes the file (a mapping of its memory stays valid).
func (s *File) Close() error { return s.f.Close() }

// Stat describes the open file (fstat): the one its header and state
// were read from, whatever its path names since.
func (s *File) Stat() (os.FileInfo, error) { return s.f.Stat() }

// ErrInUse is wrapped by LockShared's refusal of a file something else
// holds an exclusive lock on (a Target writing a snapshot to it, or a VM
// whose read-write disk it is), and by a Target's refusal of a file held
// locked: in another process, or in this one (another machine or Target).
var ErrInUse = errors.New("the file is locked by another machine or process")

// LockShared takes a shared flock on the snapshot file, without waiting,
// and returns a descriptor of the file that holds the lock until closed
// (after Close of s). A machine restored from the file holds it while its
// memory maps the file, so that a writer that takes the exclusive lock
// first (as smolvmm does) does not rewrite pages the machine reads.
func (s *File) LockShared() (*os.File, error) {
	// F_DUPFD_CLOEXEC: a dup made close-on-exec only afterwards would
	// pass to a process another goroutine starts in between.
	fd, err := unix.FcntlInt(s.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: dup: %w", s.Path, err)
	}
	lf := os.NewFile(uintptr(fd), s.Path)
	for {
		err = unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		holder := lockholder.Describe(lf)
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			if holder != "" {
				holder = "; its lock is held by " + holder
			}
			// The errno's text ("resource temporarily unavailable")
			// says no more than ErrInUse.
			return nil, fmt.Errorf("snapshot %s: %w%s", s.Path, ErrInUse, holder)
		}
		return nil, fmt.Errorf("snapshot %s: flock: %w", s.Path, err)
	}
	return lf, nil
}
