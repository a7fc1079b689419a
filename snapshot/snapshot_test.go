package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func sample(t testing.TB) []byte {
	mem := make([]byte, 2*PageSize)
	copy(mem, "guest page zero")
	copy(mem[PageSize:], "guest page one")
	var b bytes.Buffer
	if _, err := Write(&b, []byte(`{"cpu":"state"}`), mem); err != nil {
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
	if string(state) != `{"cpu":"state"}` || h.MemSize != 2*PageSize || h.MemOff%PageSize != 0 {
		t.Fatalf("header %+v state %q", h, state)
	}
	if got := b[h.MemOff+PageSize:][:14]; string(got) != "guest page one" {
		t.Fatalf("memory page 1 reads %q", got)
	}
	if err := h.CheckMemory(2 * PageSize); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckMemory(4 << 20); !errors.Is(err, ErrMemorySize) {
		t.Fatalf("CheckMemory(4 MiB) = %v, want ErrMemorySize", err)
	}
}

func TestRefusals(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name   string
		edit   func(b []byte) []byte
		want   error
		detail string
	}{
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrFormat, `bad magic "XMOLSNAP"`},
		{"other version", func(b []byte) []byte { le.PutUint32(b[8:], 2); return b }, ErrVersion, "version 2, this smolvmm reads version 1"},
		{"state byte flipped", func(b []byte) []byte { b[HeaderSize+2] ^= 1; return b }, ErrCorrupt, "SHA-256"},
		{"memory size changed", func(b []byte) []byte { le.PutUint64(b[16:], 3*PageSize); return b }, ErrCorrupt, "SHA-256"},
		{"huge state length", func(b []byte) []byte { le.PutUint64(b[32:], 1<<40); return b }, ErrCorrupt, "state length"},
		{"reserved bytes", func(b []byte) []byte { b[100] = 1; return b }, ErrCorrupt, "reserved"},
		{"memory cut", func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated, "memory section ends at"},
		{"state cut", func(b []byte) []byte { return b[:HeaderSize+3] }, ErrTruncated, "state section ends at byte 131"},
		{"header cut", func(b []byte) []byte { return b[:20] }, ErrTruncated, "header is 20 bytes"},
		{"empty", func(b []byte) []byte { return nil }, ErrTruncated, "header is 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(sample(t))
			_, _, err := Read(bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, tt.want) || !bytes.Contains([]byte(err.Error()), []byte(tt.detail)) {
				t.Fatalf("Read = %v, want %v mentioning %q", err, tt.want, tt.detail)
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

func FuzzRead(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, state, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if uint64(len(state)) != h.StateLen || h.MemOff+h.MemSize > uint64(len(b)) || h.MemOff%PageSize != 0 {
			t.Fatalf("accepted inconsistent header %+v for %d bytes", h, len(b))
		}
	})
}

// TestSparseWrite: a file gets holes for zero pages and reads back the
// same bytes as a plain write.
func TestSparseWrite(t *testing.T) {
	mem := make([]byte, 64*PageSize)
	copy(mem[5*PageSize:], "five")
	copy(mem[6*PageSize+100:], "six")
	copy(mem[40*PageSize+4095:], "x")
	var plain bytes.Buffer
	if _, err := Write(&plain, []byte("{}"), mem); err != nil {
		t.Fatal(err)
	}
	for _, lastZero := range []bool{true, false} {
		if !lastZero {
			mem[len(mem)-1] = 1
			plain.Reset()
			if _, err := Write(&plain, []byte("{}"), mem); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "sparse.snap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(bytes.Repeat([]byte{0xEE}, 70*PageSize)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil { // old bytes past the position: no holes over them
			t.Fatal(err)
		}
		if lastZero {
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
		}
		n, err := Write(f, []byte("{}"), mem)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !lastZero {
			got = got[:min(int64(len(got)), n)] // the old file was longer
		}
		if n != int64(plain.Len()) || !bytes.Equal(got, plain.Bytes()) {
			t.Fatalf("last page zero %v: sparse file of %d bytes (n %d) differs from the plain write of %d", lastZero, len(got), n, plain.Len())
		}
	}
}
