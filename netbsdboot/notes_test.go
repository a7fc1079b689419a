package netbsdboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// noteFlood is an ELF32 file whose n section headers (after the null one)
// are all SHT_NOTE, section i covering noteLen bytes of one area from
// step*(i-1) on: step 0 makes every header point at the same bytes. The
// area is empty notes (12 zero bytes each), preceded by NetBSD's ident
// note when ident is set.
func noteFlood(n, step int, ident bool) []byte {
	const noteOff, noteLen = 0x1000, 64<<10 - 4
	le := binary.LittleEndian
	area := noteLen + step*n
	shoff := noteOff + area + 8
	b := make([]byte, shoff+(n+1)*40)
	copy(b, "\x7fELF\x01\x01\x01")
	le.PutUint16(b[16:], 2) // ET_EXEC
	le.PutUint16(b[18:], 3) // EM_386
	le.PutUint32(b[20:], 1)
	le.PutUint32(b[32:], uint32(shoff))
	le.PutUint16(b[40:], 52)
	le.PutUint16(b[46:], 40)
	le.PutUint16(b[48:], uint16(n+1))
	if ident {
		copy(b[noteOff:], elftest.NetBSDNote(false, 901000000))
	}
	for i := 1; i <= n; i++ {
		s := b[shoff+i*40:]
		le.PutUint32(s[4:], 7) // SHT_NOTE
		le.PutUint32(s[16:], uint32(noteOff+step*(i-1)))
		le.PutUint32(s[20:], noteLen)
	}
	return b
}

// allocated is how many bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDetectNoteFlood: looking for the ident note reads each distinct note
// area once, stops at the ident note, and reads at most 256 KiB of notes
// in all, however many section headers point at note bytes: a file of a
// few hundred KiB whose headers all name the same 64 KiB once made Detect
// allocate gigabytes.
func TestDetectNoteFlood(t *testing.T) {
	const maxAlloc = 4 << 20
	for _, tc := range []struct {
		name      string
		n, step   int
		ident     bool
		is        error
		msg       string
		wantIdent bool
	}{
		{"one area named 500 times, no ident note", 500, 0, false, ErrNotNetBSD, "without NetBSD's ident note", false},
		{"one area named 500 times, ident note first", 500, 0, true, nil, "", true},
		{"500 overlapping areas, ident note first", 500, 4, true, nil, "", true},
		{"500 overlapping areas, no ident note", 500, 12, false, ErrBadELF, "past 256 KiB", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := noteFlood(tc.n, tc.step, tc.ident)
			var id Ident
			var err error
			got := allocated(func() { id, err = Detect(bytes.NewReader(b), int64(len(b))) })
			if got > maxAlloc {
				t.Errorf("Detect on a %d-byte file allocated %d bytes, want at most %d", len(b), got, maxAlloc)
			}
			if tc.wantIdent {
				if err != nil || id.Release() != "9.1" {
					t.Fatalf("Detect = %+v, %v; want 9.1", id, err)
				}
				return
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Detect error %v, want %v naming %q", err, tc.is, tc.msg)
			}
		})
	}
}
