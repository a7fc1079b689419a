package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/regfile"
)

// sampleNIC is sample's network card.
var sampleNIC = NIC{Present: true, MAC: [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}}

// sampleKVM is sample's KVM identity.
var sampleKVM = KVMID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

func sample(t testing.TB) []byte {
	mem := make([]byte, 2*PageSize)
	copy(mem, "guest page zero")
	copy(mem[PageSize:], "guest page one")
	var b bytes.Buffer
	if _, err := WriteMeta(&b, Meta{NIC: sampleNIC, KVM: sampleKVM}, []byte(`{"cpu":"state"}`), mem, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := sample(t)
	h, state, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if string(state) != `{"cpu":"state"}` || h.MemSize != 2*PageSize || h.MemOff%PageSize != 0 || h.NIC != sampleNIC || h.KVM != sampleKVM {
		t.Fatalf("header %+v state %q", h, state)
	}
	if got := b[h.MemOff+PageSize:][:14]; string(got) != "guest page one" {
		t.Fatalf("memory page 1 reads %q", got)
	}
}

// TestCheckMemory: a snapshot restores only into its own memory size:
// less memory as well as more is refused, with both sizes.
func TestCheckMemory(t *testing.T) {
	b := sample(t)
	h, _, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		size uint64
		ok   bool
	}{
		{"same", 2 * PageSize, true},
		{"a page less", PageSize, false},
		{"a page more", 3 * PageSize, false},
		{"4 MiB", 4 << 20, false},
		{"zero", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := h.CheckMemory(tt.size)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckMemory(%d) = %v, want nil", tt.size, err)
				}
				return
			}
			var ms *MemorySizeError
			if !errors.Is(err, ErrMemorySize) || !errors.As(err, &ms) || ms.Snapshot != 2*PageSize || ms.Asked != tt.size {
				t.Fatalf("CheckMemory(%d) = %v, want a MemorySizeError of %d in the snapshot, %d asked", tt.size, err, 2*PageSize, tt.size)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	le := binary.LittleEndian
	// resign puts the right digest back after an edit of the header, so
	// that only the field check, not the digest, can refuse it.
	resign := func(b []byte) []byte {
		d := digest(b[:HeaderSize], b[HeaderSize:HeaderSize+le.Uint64(b[32:])])
		copy(b[digestOff:], d[:])
		return b
	}
	// restate signs the header with the state read from where its state
	// offset field says it is.
	restate := func(b []byte) []byte {
		off := le.Uint64(b[24:])
		d := digest(b[:HeaderSize], b[off:off+le.Uint64(b[32:])])
		copy(b[digestOff:], d[:])
		return b
	}
	tests := []struct {
		name   string
		edit   func(b []byte) []byte
		want   error
		detail string
	}{
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrFormat, `bad magic "XMOLSNAP"`},
		// A newer smolvmm's snapshot says so: the advice is that one. A
		// file of another version has its digest over its own version
		// (resign), so that it is not a damaged version field's.
		{"newer version", func(b []byte) []byte { le.PutUint32(b[8:], 11); return resign(b) }, ErrNewerVersion, "version 11, this reader knows versions 8 to 10: written by a newer smolvmm"},
		{"version 1", func(b []byte) []byte { le.PutUint32(b[8:], 1); return resign(b) }, ErrVersion, "version 1, this reader knows versions 8 to 10: written by an older smolvmm"},
		{"version 3", func(b []byte) []byte { le.PutUint32(b[8:], 3); return resign(b) }, ErrVersion, "version 3, this reader knows versions 8 to 10: written by an older smolvmm"},
		{"version 4", func(b []byte) []byte { le.PutUint32(b[8:], 4); return resign(b) }, ErrVersion, "version 4, this reader knows versions 8 to 10: written by an older smolvmm"},
		{"version 5", func(b []byte) []byte { le.PutUint32(b[8:], 5); return resign(b) }, ErrVersion, "version 5, this reader knows versions 8 to 10: written by an older smolvmm"},
		{"version 6", func(b []byte) []byte { le.PutUint32(b[8:], 6); return resign(b) }, ErrVersion, "version 6, this reader knows versions 8 to 10: written by an older smolvmm"},
		{"version 6, otherwise corrupt", func(b []byte) []byte { le.PutUint32(b[8:], 6); b[HeaderSize+2] ^= 1; return b }, ErrVersion, "version 6, this reader knows versions 8 to 10: written by an older smolvmm"},
		// Version 7 lacks the MTRRs among its MSRs: restored, its guest
		// found them 0.
		{"version 7", func(b []byte) []byte { le.PutUint32(b[8:], 7); return resign(b) }, ErrVersion, "version 7, this reader knows versions 8 to 10: written by an older smolvmm"},
		// No smolvmm wrote version 0: not called an older one's.
		{"version 0", func(b []byte) []byte { le.PutUint32(b[8:], 0); return resign(b) }, ErrVersion, "version 0, this reader knows versions 8 to 10"},
		// A version field damaged in a file of this version is not
		// another version's: it said "version 15, this reader knows
		// version 8: written by a newer smolvmm".
		{"version byte damaged to 15", func(b []byte) []byte { b[8] = 15; return b }, ErrCorrupt, "version field damaged (header bytes 8-11 say version 15)"},
		{"version byte damaged to 6", func(b []byte) []byte { b[8] = 6; return b }, ErrCorrupt, "version field damaged (header bytes 8-11 say version 6)"},
		{"version byte damaged to 0x87", func(b []byte) []byte { b[8] = 0x87; return b }, ErrCorrupt, "version field damaged (header bytes 8-11 say version 135)"},
		{"version's last byte damaged", func(b []byte) []byte { b[11] = 0x80; return b }, ErrCorrupt, "version field damaged (header bytes 8-11 say version 2147483658)"},
		{"memory digest changed", func(b []byte) []byte { b[memDigestOff+1] ^= 1; return b }, ErrCorrupt, "SHA-256"},
		{"state byte flipped", func(b []byte) []byte { b[HeaderSize+2] ^= 1; return b }, ErrCorrupt, "SHA-256"},
		{"memory size changed", func(b []byte) []byte { le.PutUint64(b[16:], 3*PageSize); return b }, ErrCorrupt, "SHA-256"},
		{"huge state length", func(b []byte) []byte { le.PutUint64(b[32:], 1<<40); return b }, ErrCorrupt, "state length"},
		// The state length's bound: MaxStateSize passes the header check
		// (the file is then too short), a byte more is refused; the memory
		// offset follows the state, so that only the length is at fault.
		{"state length at most", func(b []byte) []byte {
			le.PutUint64(b[32:], MaxStateSize)
			le.PutUint64(b[40:], alignUp(HeaderSize+MaxStateSize))
			return b
		}, ErrTruncated, "state section ends at byte"},
		{"state length a byte over", func(b []byte) []byte {
			le.PutUint64(b[32:], MaxStateSize+1)
			le.PutUint64(b[40:], alignUp(HeaderSize+MaxStateSize+1))
			return b
		}, ErrCorrupt, "state length 16777217 exceeds 16777216"},
		// The memory size's bound, with the digest right: 1 TiB passes the
		// header check (the file is then too short), a page more is refused.
		{"memory size 1 TiB", func(b []byte) []byte { le.PutUint64(b[16:], 1<<40); return resign(b) }, ErrTruncated, "memory section ends at"},
		{"memory size 1 TiB and a page", func(b []byte) []byte { le.PutUint64(b[16:], 1<<40+PageSize); return resign(b) }, ErrCorrupt, "memory size 0x10000001000 is not"},
		{"memory size not whole pages", func(b []byte) []byte { le.PutUint64(b[16:], 2*PageSize+1); return resign(b) }, ErrCorrupt, "memory size 0x2001 is not"},
		{"memory size zero", func(b []byte) []byte { le.PutUint64(b[16:], 0); return resign(b) }, ErrCorrupt, "memory size 0x0 is not"},
		// The header size field is checked on its own, not only by the
		// digest.
		{"header size 127", func(b []byte) []byte { le.PutUint32(b[12:], HeaderSize-1); return resign(b) }, ErrCorrupt, "header size 127, want 128"},
		{"header size 129", func(b []byte) []byte { le.PutUint32(b[12:], HeaderSize+1); return resign(b) }, ErrCorrupt, "header size 129, want 128"},
		// The state follows the header directly; the digest is put back
		// as over the state where the field would put it, so that only
		// the field check can refuse it.
		{"state offset 127", func(b []byte) []byte { le.PutUint64(b[24:], HeaderSize-1); return restate(b) }, ErrCorrupt, "state offset 127, want 128"},
		{"state offset 129", func(b []byte) []byte { le.PutUint64(b[24:], HeaderSize+1); return restate(b) }, ErrCorrupt, "state offset 129, want 128"},
		{"state offset a page", func(b []byte) []byte { le.PutUint64(b[24:], PageSize); return restate(b) }, ErrCorrupt, "state offset 4096, want 128"},
		// Version 8 had bytes 107-127 reserved, zero: what a version-9
		// header records there is corrupt in a version-8 one.
		{"version 8, network recorded", func(b []byte) []byte {
			b = asVersion8(b)
			b[netOff] = byte(NetUser)
			return resign(b)
		}, ErrCorrupt, "reserved header bytes 107-127 of a version-8 snapshot are not zero"},
		{"version 8, last reserved byte", func(b []byte) []byte { b = asVersion8(b); b[HeaderSize-1] = 1; return resign(b) }, ErrCorrupt, "reserved header bytes 107-127"},
		{"network name byte without a kind", func(b []byte) []byte { b[120] = 1; return b }, ErrCorrupt, "header bytes 108-127 are not zero with no network recorded"},
		{"undefined network kind", func(b []byte) []byte { b[netOff] = 4; return b }, ErrCorrupt, "network kind 4 in header byte 107 is not defined"},
		{"network kind set", func(b []byte) []byte { b[netOff] = byte(NetUser); return b }, ErrCorrupt, "SHA-256"},
		{"NIC flag cleared", func(b []byte) []byte { b[flagsOff] = 0; return b }, ErrCorrupt, "network card address 525400123456 in the header of a machine without a network card"},
		{"undefined machine flag", func(b []byte) []byte { b[flagsOff] |= 2; return b }, ErrCorrupt, "machine flags 0x3 in header byte 84"},
		{"MAC changed", func(b []byte) []byte { b[macOff+5] ^= 1; return b }, ErrCorrupt, "SHA-256"},
		{"KVM identity changed", func(b []byte) []byte { b[kvmOff+15] ^= 1; return b }, ErrCorrupt, "SHA-256"},
		// The padding between the state and the memory is outside the
		// digest: the reader checks it is zero, as the reserved bytes.
		{"first padding byte", func(b []byte) []byte { b[HeaderSize+15] = 1; return b }, ErrCorrupt, "padding byte 143 (between the state and the memory section at 0x1000) is not zero"},
		{"last padding byte", func(b []byte) []byte { b[PageSize-1] = 0x80; return b }, ErrCorrupt, "padding byte 4095 (between the state and the memory section at 0x1000) is not zero"},
		{"memory cut", func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated, "memory section ends at"},
		// A snapshot written over the start of a longer file, or before
		// another: the reader would take what the file's start holds.
		{"byte after the memory", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt, "file is 12289 bytes, but its memory section ends at 12288"},
		{"second snapshot after it", func(b []byte) []byte { return append(b, b...) }, ErrCorrupt, "file is 24576 bytes, but its memory section ends at 12288"},
		{"state cut", func(b []byte) []byte { return b[:HeaderSize+3] }, ErrTruncated, "state section ends at byte 131"},
		{"header cut", func(b []byte) []byte { return b[:20] }, ErrTruncated, "header is 20 bytes"},
		{"header cut in the magic", func(b []byte) []byte { return b[:5] }, ErrTruncated, "header is 5 bytes"},
		// A file shorter than the magic is no snapshot cut short
		// unless it starts as one.
		{"short text", func(b []byte) []byte { return []byte("doc\n") }, ErrFormat, `bad magic "doc\n"`},
		{"one byte", func(b []byte) []byte { return []byte("X") }, ErrFormat, `bad magic "X"`},
		{"empty", func(b []byte) []byte { return nil }, ErrFormat, "the file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(sample(t))
			_, _, err := Read(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, tt.want) || !bytes.Contains([]byte(err.Error()), []byte(tt.detail)) {
				t.Fatalf("Read = %v, want %v mentioning %q", err, tt.want, tt.detail)
			}
			if newer := errors.Is(err, ErrNewerVersion); newer != (tt.want == ErrNewerVersion) || newer && !errors.Is(err, ErrVersion) {
				t.Errorf("Read = %v: ErrNewerVersion %t, want it only for a newer version, with ErrVersion", err, newer)
			}
			wantOlder := false
			if len(b) >= 12 {
				v := binary.LittleEndian.Uint32(b[8:])
				wantOlder = tt.want == ErrVersion && v >= 1 && v < OldestVersion
			}
			if older := errors.Is(err, ErrOlderVersion); older != wantOlder || older && !errors.Is(err, ErrVersion) {
				t.Errorf("Read = %v: ErrOlderVersion %t, want it only for a version from 1 to %d, with ErrVersion", err, older, OldestVersion-1)
			}
			if errors.Is(err, ErrVersion) && errors.Is(err, ErrCorrupt) {
				t.Errorf("Read = %v: both a version's refusal and corrupt", err)
			}
		})
	}
}

// readRecorder is a file whose reads it records: the end of the
// furthest asked for.
type readRecorder struct {
	r   *bytes.Reader
	end int64
}

func (r *readRecorder) ReadAt(p []byte, off int64) (int, error) {
	r.end = max(r.end, off+int64(len(p)))
	return r.r.ReadAt(p, off)
}

// TestDamagedVersion: a file of this version whose version field alone
// is damaged is refused as corrupt, saying so, by OpenHeader too; a
// newer smolvmm's, of its own layout, is still refused as newer, and
// the reader reads no more of it than a state this layout bounds (none
// when its fields are not this layout's).
func TestDamagedVersion(t *testing.T) {
	le := binary.LittleEndian
	resign := func(b []byte) []byte {
		d := digest(b[:HeaderSize], b[HeaderSize:HeaderSize+le.Uint64(b[32:])])
		copy(b[digestOff:], d[:])
		return b
	}
	// newer is a version 11 file of another layout: a header of 256
	// bytes, its digest at its end, the state after it.
	newer := func(edit func(b []byte)) func([]byte) []byte {
		return func([]byte) []byte {
			b := make([]byte, 4*PageSize)
			copy(b, Magic)
			le.PutUint32(b[8:], 11)
			le.PutUint32(b[12:], 256)
			le.PutUint64(b[16:], 2*PageSize)
			le.PutUint64(b[24:], 256)
			le.PutUint64(b[32:], 100)
			le.PutUint64(b[40:], 2*PageSize)
			d := sha256.Sum256(b[:224])
			copy(b[224:], d[:])
			if edit != nil {
				edit(b)
			}
			return b
		}
	}
	tests := []struct {
		name    string
		file    func(b []byte) []byte
		want    error
		detail  string
		maxRead int64 // the furthest byte the reader may ask for
	}{
		{"damaged to 15", func(b []byte) []byte { b[8] = 15; return b }, ErrCorrupt,
			"version field damaged (header bytes 8-11 say version 15): the SHA-256 over the header and state matches them with version 10: the file is otherwise a version-10 snapshot", PageSize},
		{"damaged to 6", func(b []byte) []byte { b[8] = 6; return b }, ErrCorrupt, "say version 6)", PageSize},
		{"damaged to 0x87", func(b []byte) []byte { b[8] = 0x87; return b }, ErrCorrupt, "say version 135)", PageSize},
		// A version-8 file (no network recorded) damaged alike.
		{"version 8 damaged to 15", func(b []byte) []byte { b = asVersion8(b); b[8] = 15; return b }, ErrCorrupt,
			"version field damaged (header bytes 8-11 say version 15): the SHA-256 over the header and state matches them with version 8: the file is otherwise a version-8 snapshot", PageSize},
		{"version 11 of this layout", func(b []byte) []byte { b[8] = 11; return resign(b) }, ErrNewerVersion, "version 11, this reader knows versions 8 to 10", HeaderSize + 15},
		{"version 11 of its own layout", newer(nil), ErrNewerVersion, "version 11, this reader knows versions 8 to 10", HeaderSize},
		// Where this layout's state offset and length are, a state no
		// file of this version could have: nothing past the header is read.
		{"version 11, state length 1<<62", newer(func(b []byte) {
			le.PutUint32(b[12:], HeaderSize)
			le.PutUint64(b[24:], HeaderSize)
			le.PutUint64(b[32:], 1<<62)
		}), ErrNewerVersion, "version 11", HeaderSize},
		{"version 11, state length past the bound", newer(func(b []byte) {
			le.PutUint32(b[12:], HeaderSize)
			le.PutUint64(b[24:], HeaderSize)
			le.PutUint64(b[32:], MaxStateSize+1)
			le.PutUint64(b[40:], alignUp(HeaderSize+MaxStateSize+1))
		}), ErrNewerVersion, "version 11", HeaderSize},
		// A state this layout allows, longer than the file: read to the
		// bound, no further.
		{"version 11, the longest state", newer(func(b []byte) {
			clear(b[HeaderSize:])
			le.PutUint32(b[12:], HeaderSize)
			le.PutUint64(b[24:], HeaderSize)
			le.PutUint64(b[32:], MaxStateSize)
			le.PutUint64(b[40:], alignUp(HeaderSize+MaxStateSize))
		}), ErrNewerVersion, "version 11", HeaderSize + MaxStateSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.file(sample(t))
			r := &readRecorder{r: bytes.NewReader(b)}
			_, _, err := Read(r, int64(len(b)))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("Read = %v, want %v mentioning %q", err, tt.want, tt.detail)
			}
			if tt.want == ErrCorrupt && errors.Is(err, ErrVersion) {
				t.Errorf("Read = %v: a damaged version field is no other version", err)
			}
			if r.end > tt.maxRead {
				t.Errorf("Read asked for bytes up to %d, want at most %d", r.end, tt.maxRead)
			}
			path := filepath.Join(t.TempDir(), "s.snap")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := OpenHeader(path)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) || !strings.Contains(err.Error(), path) {
				t.Fatalf("OpenHeader = %v, want %v naming the file and mentioning %q", err, tt.want, tt.detail)
			}
		})
	}
}

// TestDigestMismatchWhole: a header digest that differs from the
// header's and state's SHA-256 is refused showing both digests whole: a
// byte changed past the first 8 showed two identical prefixes.
func TestDigestMismatchWhole(t *testing.T) {
	for _, at := range []int{0, 8, sha256.Size - 1} {
		t.Run(fmt.Sprint("byte ", at), func(t *testing.T) {
			b := sample(t)
			good := hex.EncodeToString(b[digestOff : digestOff+sha256.Size])
			b[digestOff+at] ^= 1
			bad := hex.EncodeToString(b[digestOff : digestOff+sha256.Size])
			_, _, err := Read(bytes.NewReader(b), int64(len(b)))
			want := fmt.Sprintf("SHA-256 of header and state is %s, the header says %s", good, bad)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Read = %v, want ErrCorrupt saying %q", err, want)
			}
		})
	}
}

func TestOpenMapMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.snap")
	b := sample(t)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := f.MapMemory()
	if err != nil {
		t.Fatal(err)
	}
	if string(mem[PageSize:][:14]) != "guest page one" {
		t.Fatalf("mapped page 1 reads %q", mem[PageSize:][:14])
	}
	copy(mem, "changed") // copy-on-write: the file keeps its bytes
	again, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Fatal("a write to the private mapping reached the file")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Fatalf("Open(missing) = %v", err)
	}
}

// TestOpenHeader: OpenHeader checks the header alone; ReadState then
// refuses what Open refuses, and MapMemory a file too short for the memory
// section, before ReadState has said so.
func TestOpenHeader(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(b []byte) []byte
		mapErr error // MapMemory's
		want   error // ReadState's
		detail string
	}{
		{"good", func(b []byte) []byte { return b }, nil, nil, ""},
		{"state byte flipped", func(b []byte) []byte { b[HeaderSize+2] ^= 1; return b }, nil, ErrCorrupt, "SHA-256"},
		{"memory size grown", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 3*PageSize); return b }, ErrTruncated, ErrCorrupt, "SHA-256"},
		{"memory cut", func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated, ErrTruncated, "memory section ends at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.snap")
			if err := os.WriteFile(path, tt.edit(sample(t)), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := OpenHeader(path)
			if err != nil {
				t.Fatalf("OpenHeader: %v", err)
			}
			defer f.Close()
			if f.State != nil {
				t.Fatalf("OpenHeader set State to %q before checking it", f.State)
			}
			mem, err := f.MapMemory()
			if err == nil {
				unix.Munmap(mem)
			}
			if !errors.Is(err, tt.mapErr) {
				t.Errorf("MapMemory = %v, want %v", err, tt.mapErr)
			}
			err = f.ReadState()
			if tt.want == nil {
				if err != nil || string(f.State) != `{"cpu":"state"}` {
					t.Fatalf("ReadState = %v, State %q", err, f.State)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) || !strings.Contains(err.Error(), path) {
				t.Fatalf("ReadState = %v, want %v naming the file and mentioning %q", err, tt.want, tt.detail)
			}
			if f.State != nil {
				t.Fatalf("ReadState refused the state but set State to %q", f.State)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte(Magic))
	f.Add([]byte("SMOL"))  // shorter than the magic: cut short
	f.Add([]byte("doc\n")) // shorter than the magic: no snapshot
	padded := sample(f)    // a byte of the padding before the memory set
	padded[PageSize-1] = 1
	f.Add(padded)
	damaged := sample(f) // a version field damaged
	damaged[8] = 15
	f.Add(damaged)
	f.Add(asVersion8(sample(f))) // network_test.go
	damaged8 := asVersion8(sample(f))
	damaged8[8] = 15
	f.Add(damaged8)
	var withNet bytes.Buffer
	if _, err := WriteMeta(&withNet, Meta{NIC: sampleNIC, Net: Network{Kind: NetShared, Name: "cb", Addr: leased16}}, []byte("state"), sampleMem(), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(withNet.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		// What a restore trusts before the digest is checked: where the
		// memory section lies, for mapping it.
		if h, _, err := readHeader(bytes.NewReader(b)); err == nil {
			if h.MemOff%PageSize != 0 || h.MemOff < HeaderSize || h.MemSize == 0 || h.MemSize%PageSize != 0 {
				t.Fatalf("readHeader accepted a memory section at %#x of %#x bytes", h.MemOff, h.MemSize)
			}
		}
		h, state, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if errors.Is(err, ErrVersion) && errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read = %v: both a version's refusal and corrupt", err)
			}
			// A damaged version field is the verdict only for a file
			// whose header, with a version the reader takes in it,
			// passes and whose digest is then right.
			le := binary.LittleEndian
			if len(b) >= HeaderSize && !knownVersion(le.Uint32(b[8:])) && errors.Is(err, ErrCorrupt) {
				ok := false
				for v := uint32(OldestVersion); v <= Version; v++ {
					fixed := bytes.Clone(b)
					le.PutUint32(fixed[8:], v)
					fh, _, ferr := readHeader(bytes.NewReader(fixed))
					ok = ok || ferr == nil && uint64(len(fixed)) >= HeaderSize+fh.StateLen && digest(fixed[:HeaderSize], fixed[HeaderSize:HeaderSize+fh.StateLen]) == fh.Digest
				}
				if !ok {
					t.Fatalf("Read = %v for version %d, but with versions %d to %d the header is refused or its digest wrong", err, le.Uint32(b[8:]), OldestVersion, Version)
				}
			}
			return
		}
		if uint64(len(state)) != h.StateLen || h.MemOff+h.MemSize > uint64(len(b)) || h.MemOff%PageSize != 0 {
			t.Fatalf("accepted inconsistent header %+v for %d bytes", h, len(b))
		}
		if pad := b[h.StateOff+h.StateLen : h.MemOff]; !isZero(pad) {
			t.Fatalf("accepted non-zero padding (%d bytes) before the memory section at %#x", len(pad), h.MemOff)
		}
		// The memory check reads all of the section the header placed.
		d, err := readMemDigest(bytes.NewReader(b), h, nil)
		if err != nil {
			t.Fatalf("reading the memory section of an accepted snapshot: %v", err)
		}
		if want := memDigest(b[h.MemOff:h.MemOff+h.MemSize], zeroPages(b[h.MemOff:h.MemOff+h.MemSize], nil)); d != want {
			t.Fatalf("memory digest read %08x, computed %08x", d, want)
		}
	})
}

// BenchmarkMemDigest: the memory digest of 256 MiB of non-zero memory, as
// Write computes it (zero scan and CRC-32C), beside SHA-256 of the same,
// the alternative the package doc weighs it against.
func BenchmarkMemDigest(b *testing.B) {
	mem := make([]byte, 256<<20)
	for i := range mem {
		mem[i] = byte(i*7 + 1)
	}
	b.Run("crc32c", func(b *testing.B) {
		b.SetBytes(int64(len(mem)))
		for range b.N {
			memDigest(mem, zeroPages(mem, nil))
		}
	})
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(len(mem)))
		for range b.N {
			sha256.Sum256(mem)
		}
	})
}

// TestWriteAppendFile: a file opened O_APPEND, whose writes all land at
// its end, gets a snapshot that Read and VerifyMemory accept, byte for
// byte what a plain write gives (its zero pages written, not sought
// over); one that holds bytes already is refused before a byte is
// written, since the snapshot would follow them.
func TestWriteAppendFile(t *testing.T) {
	mem := make([]byte, 40*PageSize)
	copy(mem[3*PageSize:], "three")
	copy(mem[20*PageSize+7:], "twenty")
	var plain bytes.Buffer
	if _, err := Write(&plain, NIC{}, []byte("{}"), mem); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		old  []byte // what the file holds before
		ok   bool
	}{
		{"empty", nil, true},
		{"holding bytes", []byte("earlier"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "append.snap")
			if err := os.WriteFile(path, tc.old, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			n, err := Write(f, NIC{}, []byte("{}"), mem)
			if cerr := f.Close(); cerr != nil {
				t.Fatal(cerr)
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "O_APPEND") || !bytes.Equal(got, tc.old) {
					t.Fatalf("Write = %d, %v; file %d bytes; want a refusal naming O_APPEND, the file as it was", n, err, len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(plain.Len()) || !bytes.Equal(got, plain.Bytes()) {
				t.Fatalf("Write = %d; file of %d bytes differs from a plain write's %d", n, len(got), plain.Len())
			}
			openVerified(t, path)
		})
	}
}

// TestWriteStart: a snapshot is written only at the start of an empty
// file, since a reader takes it from the file's first byte to its last:
// a file holding bytes (a snapshot written before, into the same
// *os.File or another at its start) or positioned past its start is
// refused before a byte is written, and keeps what it held.
func TestWriteStart(t *testing.T) {
	mem := make([]byte, 8*PageSize)
	copy(mem[2*PageSize:], "two")
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, f *os.File) // what was done to the file before
		detail  string                         // the refusal's, or "" for none
	}{
		{"new file", func(*testing.T, *os.File) {}, ""},
		{"second snapshot", func(t *testing.T, f *os.File) {
			if _, err := Write(f, NIC{}, []byte("{}"), mem); err != nil {
				t.Fatal(err)
			}
		}, "at offset 36864"},
		{"bytes written first", func(t *testing.T, f *os.File) {
			if _, err := f.WriteString("prefix"); err != nil {
				t.Fatal(err)
			}
		}, "at offset 6"},
		{"old bytes at the start", func(t *testing.T, f *os.File) {
			if _, err := f.WriteString("old bytes"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}, "holds 9 bytes already"},
		{"sought past the start", func(t *testing.T, f *os.File) {
			if _, err := f.Seek(PageSize, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}, "at offset 4096"},
		{"truncated after a snapshot", func(t *testing.T, f *os.File) {
			if _, err := Write(f, NIC{}, []byte("{}"), mem); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.snap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tc.prepare(t, f)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := Write(f, NIC{}, []byte("{}"), mem)
			if tc.detail != "" {
				after, rerr := os.ReadFile(path)
				if rerr != nil {
					t.Fatal(rerr)
				}
				if err == nil || n != 0 || !strings.Contains(err.Error(), tc.detail) || !bytes.Equal(after, before) {
					t.Fatalf("Write = %d, %v; file %d bytes, was %d; want a refusal saying %q, the file as it was", n, err, len(after), len(before), tc.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			openVerified(t, path)
		})
	}
}

// seekBuffer is a writer in memory that can seek, but is no file.
type seekBuffer struct {
	b   []byte
	pos int64
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if grow := s.pos + int64(len(p)) - int64(len(s.b)); grow > 0 {
		s.b = append(s.b, make([]byte, grow)...)
	}
	copy(s.b[s.pos:], p)
	s.pos += int64(len(p))
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += int64(len(s.b))
	}
	s.pos = off
	return off, nil
}

// TestWriteStartSeeker: a writer that seeks but is no file (no Stat) is
// refused past its start too, and written from it.
func TestWriteStartSeeker(t *testing.T) {
	mem := make([]byte, 2*PageSize)
	copy(mem, "zero")
	var plain bytes.Buffer
	if _, err := Write(&plain, NIC{}, []byte("{}"), mem); err != nil {
		t.Fatal(err)
	}
	var s seekBuffer
	if _, err := Write(&s, NIC{}, []byte("{}"), mem); err != nil || !bytes.Equal(s.b, plain.Bytes()) {
		t.Fatalf("Write at offset 0 = %v; %d bytes, want %d as a plain write's", err, len(s.b), plain.Len())
	}
	if n, err := Write(&s, NIC{}, []byte("{}"), mem); err == nil || n != 0 || !strings.Contains(err.Error(), "at offset 12288") {
		t.Fatalf("Write at offset 12288 = %d, %v; want a refusal naming the offset", n, err)
	}
}

// shortWriter is a writer that reports fewer bytes than it was given,
// without an error, as write says.
type shortWriter struct {
	write func(n int, p []byte) int // bytes taken of p, the nth call
	calls int
	got   bytes.Buffer
}

func (w *shortWriter) Write(p []byte) (int, error) {
	w.calls++
	k := w.write(w.calls, p)
	if k >= 0 && k <= len(p) {
		w.got.Write(p[:k])
	}
	return k, nil
}

// TestWriteShort: a short write without an error fails the snapshot
// with io.ErrShortWrite, wherever it comes (the header, a page of data,
// the zeros of a writer that cannot seek), and a count past what was
// given is refused: a writer that took half of each write looped
// forever on the zeros, and one that dropped a byte once gave a
// snapshot reported whole that no reader took.
func TestWriteShort(t *testing.T) {
	mem := make([]byte, 8*PageSize)
	copy(mem[PageSize:], "one")
	for _, tc := range []struct {
		name  string
		write func(n int, p []byte) int
		want  error  // wrapped, or nil
		msg   string // in the error
	}{
		{"half of each", func(_ int, p []byte) int { return len(p) / 2 }, io.ErrShortWrite, "at offset 64"},
		{"nothing", func(int, []byte) int { return 0 }, io.ErrShortWrite, "at offset 0"},
		{"one byte dropped once, in the data", func(n int, p []byte) int {
			if n == 4 { // the header, the state, the padding, then page 1
				return len(p) - 1
			}
			return len(p)
		}, io.ErrShortWrite, "at offset 8191"},
		{"one byte dropped in the zeros", func(n int, p []byte) int {
			if n == 5 {
				return len(p) - 1
			}
			return len(p)
		}, io.ErrShortWrite, "short write"},
		{"more than given", func(n int, p []byte) int { return len(p) + 1 }, nil, "reported 129 bytes written of 128"},
		{"negative", func(n int, p []byte) int { return -1 }, nil, "reported -1 bytes written of 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &shortWriter{write: tc.write}
			done := make(chan struct{})
			var n int64
			var err error
			go func() {
				defer close(done)
				n, err = Write(w, NIC{}, []byte("{}"), mem)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("Write has not returned in 20 s (%d calls)", w.calls)
			}
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Write = %d, %v; want an error wrapping %v saying %q", n, err, tc.want, tc.msg)
			}
			if n != int64(w.got.Len()) {
				t.Fatalf("Write = %d, the writer took %d bytes", n, w.got.Len())
			}
		})
	}
}

// TestSparseWrite: a file gets holes for zero pages and reads back the
// same bytes as a plain write.
func TestSparseWrite(t *testing.T) {
	mem := make([]byte, 64*PageSize)
	copy(mem[5*PageSize:], "five")
	copy(mem[6*PageSize+100:], "six")
	copy(mem[40*PageSize+4095:], "x")
	var plain bytes.Buffer
	if _, err := Write(&plain, NIC{}, []byte("{}"), mem); err != nil {
		t.Fatal(err)
	}
	for _, lastZero := range []bool{true, false} {
		if !lastZero {
			mem[len(mem)-1] = 1
			plain.Reset()
			if _, err := Write(&plain, NIC{}, []byte("{}"), mem); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "sparse.snap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		// A file truncated after it held bytes: holes read as zeros.
		if _, err := f.Write(bytes.Repeat([]byte{0xEE}, 70*PageSize)); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		n, err := Write(f, NIC{}, []byte("{}"), mem)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(plain.Len()) || !bytes.Equal(got, plain.Bytes()) {
			t.Fatalf("last page zero %v: sparse file of %d bytes (n %d) differs from the plain write of %d", lastZero, len(got), n, plain.Len())
		}
	}
}

// TestLockShared: the shared lock outlives the File's Close, lets other
// readers lock shared, keeps a writer's exclusive lock out until released,
// and is refused (ErrInUse) while a writer holds the file, which may be in
// this process (another machine or Target), so no other process is blamed.
func TestLockShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.snap")
	if err := os.WriteFile(path, sample(t), 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lockedBy := func(n int) *os.File {
		t.Helper()
		s, err := OpenHeader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		lf, err := s.LockShared()
		if err != nil {
			t.Fatalf("lock %d: %v", n, err)
		}
		return lf
	}
	a, b := lockedBy(1), lockedBy(2)
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("exclusive lock over two shared: %v, want EWOULDBLOCK", err)
	}
	a.Close()
	b.Close()
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("exclusive lock once released: %v", err)
	}
	s, err := OpenHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if lf, err := s.LockShared(); !errors.Is(err, ErrInUse) {
		if lf != nil {
			lf.Close()
		}
		t.Fatalf("shared lock under a writer's: %v, want ErrInUse", err)
	} else if strings.Contains(err.Error(), "another process") {
		// The writer is this process: another machine or Target of it.
		t.Errorf("shared lock under this process's writer: %q blames another process", err)
	}
}

// A snapshot is mapped, so only a regular file will do; opening a FIFO
// used to block until a writer came.
func TestOpenHeaderNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero", t.TempDir()} {
		s, err := OpenHeader(path)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, regfile.ErrNotRegular) {
			t.Errorf("OpenHeader(%s): %v, want not a regular file", path, err)
		}
	}
}

// TestVerifyMemory: Read accepts a snapshot whose memory section was
// damaged (a restore does not read it), and VerifyMemory refuses it; an
// intact one passes, written as a plain stream or with holes.
func TestVerifyMemory(t *testing.T) {
	mem := make([]byte, 300*PageSize) // more than one of VerifyMemory's reads
	copy(mem, "guest page zero")
	copy(mem[7*PageSize+PageSize-1:], "x")
	copy(mem[299*PageSize:], "the last page")
	tests := []struct {
		name   string
		sparse bool
		edit   func(b []byte, memOff int)
		ok     bool
	}{
		{"intact", false, func([]byte, int) {}, true},
		{"intact with holes", true, func([]byte, int) {}, true},
		{"byte flipped", false, func(b []byte, m int) { b[m+7*PageSize+100] ^= 0x10 }, false},
		{"byte flipped, with holes", true, func(b []byte, m int) { b[m+299*PageSize+3] ^= 1 }, false},
		{"byte set in a zero page", false, func(b []byte, m int) { b[m+200*PageSize] = 1 }, false},
		{"page zeroed", false, func(b []byte, m int) { clear(b[m : m+PageSize]) }, false},
		{"pages swapped", false, func(b []byte, m int) {
			p0 := append([]byte(nil), b[m:m+PageSize]...)
			copy(b[m:], b[m+299*PageSize:m+300*PageSize])
			copy(b[m+299*PageSize:], p0)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.snap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var w io.Writer = f
			if !tt.sparse {
				w = struct{ io.Writer }{f} // no Seek: every page written
			}
			_, err = Write(w, NIC{}, []byte("{}"), mem)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			h, _, err := Read(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(b, int(h.MemOff))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.sparse {
				// Holes again where the pages are zero (WriteFile wrote
				// them all), so that VerifyMemory skips holes.
				punchZeroPages(t, path, b, int(h.MemOff))
			}
			s, err := Open(path) // accepted: the memory is not read
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			err = s.VerifyMemory()
			if tt.ok {
				if err != nil {
					t.Fatalf("VerifyMemory = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "memory section") || !strings.Contains(err.Error(), path) {
				t.Fatalf("VerifyMemory = %v, want ErrCorrupt naming the file and the memory section", err)
			}
		})
	}
}

// punchZeroPages makes holes of the zero pages of the memory section of
// the file at path, whose bytes are b.
func punchZeroPages(t *testing.T, path string, b []byte, memOff int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	holes := 0
	for off := memOff; off+PageSize <= len(b); off += PageSize {
		if isZero(b[off : off+PageSize]) {
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(off), PageSize); err != nil {
				t.Skipf("no holes on this file system: %v", err)
			}
			holes++
		}
	}
	if holes == 0 {
		t.Fatal("no zero pages to make holes of")
	}
}

// TestVerifyMemoryUnverified: VerifyMemory trusts the header's digest only
// once ReadState has checked it.
func TestVerifyMemoryUnverified(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.snap")
	if err := os.WriteFile(path, sample(t), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.VerifyMemory(); err == nil || !strings.Contains(err.Error(), "ReadState") {
		t.Fatalf("VerifyMemory before ReadState = %v, want a refusal", err)
	}
	if err := s.ReadState(); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyMemory(); err != nil {
		t.Fatalf("VerifyMemory after ReadState = %v", err)
	}
}

// BenchmarkVerifyMemory: VerifyMemory of a 128 MiB snapshot as the demo
// guest's is (a few pages of data, the rest holes) and of 256 MiB of
// non-zero memory, read from the page cache.
func BenchmarkVerifyMemory(b *testing.B) {
	for _, tt := range []struct {
		name  string
		size  int
		dense bool
	}{{"sparse-128MiB", 128 << 20, false}, {"dense-256MiB", 256 << 20, true}} {
		b.Run(tt.name, func(b *testing.B) {
			mem := make([]byte, tt.size)
			if tt.dense {
				for i := range mem {
					mem[i] = byte(i*7 + 1)
				}
			} else {
				for _, p := range []int{0, 1, 2, 3, 256, 257, 300} {
					copy(mem[p*PageSize:], "a page of the guest's")
				}
			}
			path := filepath.Join(b.TempDir(), "s.snap")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			_, err = Write(f, NIC{}, []byte("{}"), mem)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			s, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(tt.size))
			b.ResetTimer()
			for range b.N {
				if err := s.VerifyMemory(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWriteNICWithoutCard: Write refuses an address for a machine without
// a card, which no reader would accept.
func TestWriteNICWithoutCard(t *testing.T) {
	var b bytes.Buffer
	_, err := Write(&b, NIC{MAC: sampleNIC.MAC}, []byte("{}"), make([]byte, PageSize))
	if err == nil || !strings.Contains(err.Error(), "without a network card") || b.Len() != 0 {
		t.Fatalf("Write = %v, %d bytes written; want a refusal, none written", err, b.Len())
	}
}

// TestWriteMemorySize: Write refuses a memory size that Read would
// refuse (none, or not whole pages) before writing a byte, and a file it
// writes of one page is read back.
func TestWriteMemorySize(t *testing.T) {
	for _, tc := range []struct {
		name string
		mem  []byte
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", []byte{}, false},
		{"a byte short of a page", make([]byte, PageSize-1), false},
		{"a page and a byte", make([]byte, PageSize+1), false},
		{"one page", make([]byte, PageSize), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			_, err := Write(&b, NIC{}, []byte("{}"), tc.mem)
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "positive multiple of the page size") || b.Len() != 0 {
					t.Fatalf("Write = %v, %d bytes written; want a refusal, none written", err, b.Len())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Read(bytes.NewReader(b.Bytes()), int64(b.Len())); err != nil {
				t.Fatalf("Read of what Write wrote: %v", err)
			}
		})
	}
}

// TestFileDigest: a file's digest is the memory digest's CRC-32C over its
// non-zero 4 KiB blocks with their numbers, the last block shorter; a
// sparse copy (holes where the blocks are zero) has the full copy's digest,
// a byte changed anywhere changes it, and a file shorter than asked is an
// error.
func TestFileDigest(t *testing.T) {
	const size = 5*PageSize + 100
	content := make([]byte, size)
	copy(content[PageSize+7:], "block one")
	copy(content[4*PageSize:], "block four")
	copy(content[5*PageSize+99:], "z") // the partial last block's last byte
	// The reference, computed here without the package's helpers.
	tab := crc32.MakeTable(crc32.Castagnoli)
	var want uint32
	for b := 0; b*PageSize < size; b++ {
		blk := content[b*PageSize : min((b+1)*PageSize, size)]
		if bytes.Count(blk, []byte{0}) == len(blk) {
			continue
		}
		var num [8]byte
		binary.LittleEndian.PutUint64(num[:], uint64(b))
		want = crc32.Update(want, tab, num[:])
		want = crc32.Update(want, tab, blk)
	}
	dir := t.TempDir()
	full := filepath.Join(dir, "full.img")
	if err := os.WriteFile(full, content, 0o600); err != nil {
		t.Fatal(err)
	}
	// The sparse copy writes only the non-zero blocks.
	sparse := filepath.Join(dir, "sparse.img")
	sf, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []int{1, 4, 5} {
		if _, err := sf.WriteAt(content[b*PageSize:min((b+1)*PageSize, size)], int64(b*PageSize)); err != nil {
			t.Fatal(err)
		}
	}
	sf.Close()
	changed := filepath.Join(dir, "changed.img")
	edit := append([]byte(nil), content...)
	edit[3*PageSize+5] = 1 // a zero block made non-zero
	if err := os.WriteFile(changed, edit, 0o600); err != nil {
		t.Fatal(err)
	}
	digest := func(path string, size int64) (uint32, error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return FileDigest(f, size)
	}
	for _, tt := range []struct {
		name, path string
		same       bool
	}{{"full", full, true}, {"sparse", sparse, true}, {"changed", changed, false}} {
		got, err := digest(tt.path, size)
		if err != nil || (got == want) != tt.same {
			t.Errorf("%s: digest %08x, %v; the reference %08x (want them equal: %v)", tt.name, got, err, want, tt.same)
		}
	}
	if _, err := digest(full, size+1); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), full) {
		t.Errorf("digest past the end: %v, want io.ErrUnexpectedEOF naming the file", err)
	}
}

// TestWriteKnown: the pages a caller knows to be zero are not read (here
// one that cannot be: PROT_NONE), and are written as zeros; the others
// are written as they are, the file verifying against its digest, and
// the header has the card as Write's.
func TestWriteKnown(t *testing.T) {
	const pages = 70
	mem, err := unix.Mmap(-1, 0, pages*PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	copy(mem[2*PageSize:], "two")
	copy(mem[66*PageSize+9:], "sixty-six")
	if err := unix.Mprotect(mem[65*PageSize:66*PageSize], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	known := NewPageSet(pages)
	for _, p := range []int{0, 1, 65, 69} {
		known.Add(p)
	}
	path := filepath.Join(t.TempDir(), "known.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := WriteKnown(f, sampleNIC, []byte("{}"), mem, known); err != nil {
		t.Fatal(err)
	}
	s := openVerified(t, path)
	if s.Header.NIC != sampleNIC {
		t.Errorf("header's card %+v, written %+v", s.Header.NIC, sampleNIC)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, pages*PageSize)
	copy(want[2*PageSize:], "two")
	copy(want[66*PageSize+9:], "sixty-six")
	if !bytes.Equal(got[s.Header.MemOff:], want) {
		t.Fatal("memory section differs from the memory, with the known pages zero")
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReaderAt
	n int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += n
	return n, err
}

// TestReadDigestReadsOnlyData: the digest of a sparse file reads its data
// pages and none of the holes beside them (a restore checks every
// snapshot's memory, most of it holes), and equals the digest of the same
// bytes read in full.
func TestReadDigestReadsOnlyData(t *testing.T) {
	const pages = 600 // more than one read's worth
	data := []int{0, 3, 256, 257, 599}
	b := make([]byte, pages*PageSize)
	for _, p := range data {
		copy(b[p*PageSize:], "a page of the guest's")
	}
	path := filepath.Join(t.TempDir(), "mem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	punchZeroPages(t, path, b, 0)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &countingReader{r: f}
	got, err := readDigest(c, 0, uint64(len(b)), dataAfter(f))
	if err != nil {
		t.Fatal(err)
	}
	want, err := readDigest(bytes.NewReader(b), 0, uint64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("digest %08x over the holes, %08x over every byte", got, want)
	}
	if c.n != len(data)*PageSize {
		t.Errorf("read %d bytes (%d pages), want the %d data pages' %d", c.n, c.n/PageSize, len(data), len(data)*PageSize)
	}
}

// TestSoftCRC: softUpdate computes hash/crc32's CRC-32C, whole or in
// pieces, at every length around its 8-byte steps; and a digest longer
// than softCRCBytes, which switches to hash/crc32 part way, is the one
// hash/crc32 alone gives.
func TestSoftCRC(t *testing.T) {
	b := make([]byte, 3<<20)
	for i := range b {
		b[i] = byte(i*131 + i>>9)
	}
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 63, 4096, 4103, len(b)} {
		want := crc32.Checksum(b[:n], castagnoli())
		if got := softUpdate(0, b[:n]); got != want {
			t.Errorf("softUpdate of %d bytes = %08x, want %08x", n, got, want)
		}
		if got := softUpdate(softUpdate(0, b[:n/3]), b[n/3:n]); got != want {
			t.Errorf("softUpdate of %d bytes in two = %08x, want %08x", n, got, want)
		}
	}
	var d memHash
	var want uint32
	var num [8]byte
	for i := range len(b) / PageSize {
		p := b[i*PageSize : (i+1)*PageSize]
		d.page(uint64(i), p)
		binary.LittleEndian.PutUint64(num[:], uint64(i))
		want = crc32.Update(crc32.Update(want, castagnoli(), num[:]), castagnoli(), p)
	}
	if d.crc != want || d.hashed < softCRCBytes {
		t.Fatalf("digest of %d bytes = %08x (%d in software), want %08x", len(b), d.crc, d.hashed, want)
	}
}

// openVerified opens the snapshot at path and checks its memory's digest,
// failing t otherwise; the snapshot is closed when t ends.
func openVerified(t *testing.T, path string) *File {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.VerifyMemory(); err != nil {
		t.Fatal(err)
	}
	return s
}
