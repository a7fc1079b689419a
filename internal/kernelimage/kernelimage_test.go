package kernelimage

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestDecompress(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte("kernel bytes"))
	zw.Close()
	badCRC := bytes.Clone(z.Bytes())
	badCRC[len(badCRC)-8] ^= 0xff
	tests := []struct {
		name    string
		in      []byte
		want    string
		gzipped bool
		err     error
	}{
		{"plain", []byte("\x7fELF..."), "\x7fELF...", false, nil},
		{"gzip", z.Bytes(), "kernel bytes", true, nil},
		{"truncated gzip", z.Bytes()[:z.Len()-6], "", true, ErrCorrupt},
		{"gzip magic only", []byte{0x1f, 0x8b}, "", true, ErrCorrupt},
		// Whole, yet corrupt: no guess that it was cut short.
		{"checksum wrong", badCRC, "", true, ErrCorrupt},
		{"empty", nil, "", false, nil},
		// libsa's cread reads member after member, then passes bytes
		// that are not gzip data on as they stand.
		{"two members", bytes.Join([][]byte{z.Bytes(), z.Bytes()}, nil), "kernel byteskernel bytes", true, nil},
		{"padded with zeros", bytes.Join([][]byte{z.Bytes(), {0, 0, 0, 0}}, nil), "kernel bytes\x00\x00\x00\x00", true, nil},
		{"lone 0x1f after the member", bytes.Join([][]byte{z.Bytes(), {0x1f}}, nil), "kernel bytes", true, nil},
		{"0x1f and other bytes after the member", bytes.Join([][]byte{z.Bytes(), []byte("\x1fxy")}, nil), "kernel bytesxy", true, nil},
		{"second member corrupt", bytes.Join([][]byte{z.Bytes(), z.Bytes()[:12]}, nil), "", true, ErrCorrupt},
	}
	for _, tt := range tests {
		got, gz, err := Decompress(tt.in)
		if string(got) != tt.want || gz != tt.gzipped || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("%s: got %q gzipped=%v err=%v; want err %v", tt.name, got, gz, err, tt.err)
		}
		// Facts only: what to do about it is the caller's to say.
		if err != nil && strings.ContainsAny(err.Error(), "?()") {
			t.Errorf("%s: err %q gives advice", tt.name, err)
		}
	}
}

// TestDecompressBoundsPlain: MaxSize bounds a plain image as it bounds a
// gunzipped one; a plain one past it was returned as it stood.
func TestDecompressBoundsPlain(t *testing.T) {
	tests := []struct {
		name string
		size int
		err  bool
	}{
		{"at the limit", MaxSize, false},
		{"past the limit", MaxSize + 1, true},
	}
	for _, tt := range tests {
		// Fresh zero pages from the OS: neither make nor Decompress
		// touches most of them.
		raw := make([]byte, tt.size)
		copy(raw, "\x7fELF")
		out, gz, err := Decompress(raw)
		if (err != nil) != tt.err || gz {
			t.Errorf("%s: gzipped=%v err=%v, want an error %v", tt.name, gz, err, tt.err)
		}
		if err != nil && (!strings.Contains(err.Error(), "512 MiB") || !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt)) {
			t.Errorf("%s: err %q does not name the limit or is not ErrTooLarge", tt.name, err)
		}
		if err == nil && len(out) != tt.size {
			t.Errorf("%s: %d bytes back, want %d", tt.name, len(out), tt.size)
		}
	}
}

// gz compresses data as one gzip member.
func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return z.Bytes()
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestGunzipBombMemory: data that expands past the limit is refused
// having allocated little more than the limit, and data within it costs
// little more than its size, twice it when the trailer is wrong. The output grew in a doubling buffer up to
// limit+1 bytes: a 2.6 MB file expanding past MaxSize took 2.1 GB.
func TestGunzipBombMemory(t *testing.T) {
	const limit = 4 << 20
	lying := gz(t, make([]byte, 4*limit))
	binary.LittleEndian.PutUint32(lying[len(lying)-4:], limit-1)
	small := gz(t, make([]byte, limit/4))
	tests := []struct {
		name    string
		in      []byte
		size    int // the result's; -1 for a refusal
		maxLoad float64
	}{
		{"one member past the limit", gz(t, make([]byte, 4*limit)), -1, 1.5},
		{"trailer understating the size", lying, -1, 1.5},
		{"many members past the limit", bytes.Repeat(small, 5), -1, 1.5},
		{"at the limit", gz(t, make([]byte, limit)), limit, 1.5},
		// The trailer gives the last member's size only: the output
		// grows in chunks, then is joined, costing its size twice
		// rather than a second inflation.
		{"members up to the limit", bytes.Repeat(small, 4), limit, 2.1},
		{"padded", append(gz(t, make([]byte, limit/2)), make([]byte, 100)...), limit/2 + 100, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []byte
			var err error
			n := allocated(func() { out, err = Gunzip(tt.in, limit) })
			if tt.size < 0 {
				if !errors.Is(err, ErrTooLarge) || out != nil {
					t.Errorf("Gunzip = %d bytes, %v; want ErrTooLarge", len(out), err)
				}
			} else if err != nil || len(out) != tt.size {
				t.Errorf("Gunzip = %d bytes, %v; want %d bytes", len(out), err, tt.size)
			}
			if max := tt.maxLoad * limit; float64(n) > max {
				t.Errorf("allocated %d bytes, more than %.0f", n, max)
			}
		})
	}
}

// TestDecompressBomb: a gzip file expanding past MaxSize is refused as
// not a kernel, at a cost in memory close to MaxSize.
func TestDecompressBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("inflates 576 MiB")
	}
	bomb := bytes.Repeat(gz(t, make([]byte, 64<<20)), MaxSize/(64<<20)+1)
	var err error
	n := allocated(func() { _, _, err = Decompress(bomb) })
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "512 MiB") {
		t.Errorf("Decompress: %v, want the bomb refused as ErrTooLarge", err)
	}
	if n > MaxSize*3/2 {
		t.Errorf("allocated %d MiB refusing it", n>>20)
	}
}

// TestGunzipImplausibleTrailer: the last four bytes of the data are taken
// as the size to allocate only when deflate could expand the data that far
// and the limit allows it. Four bytes appended to a tiny member made a
// 4 GiB allocation under a large limit (out of memory in a small address
// space).
func TestGunzipImplausibleTrailer(t *testing.T) {
	member := gz(t, []byte("kernel bytes"))
	tests := []struct {
		name  string
		in    []byte
		limit uint64
		want  string
	}{
		{"4 GiB trailer after a tiny member", append(append([]byte(nil), member...), 0xf0, 0xff, 0xff, 0xff), 16 << 30, "kernel bytes\xf0\xff\xff\xff"},
		{"4 GiB trailer, limit below it", append(append([]byte(nil), member...), 0xf0, 0xff, 0xff, 0xff), 1 << 30, "kernel bytes\xf0\xff\xff\xff"},
		{"trailer past deflate's ratio", append(append([]byte(nil), member...), 0, 0, 16, 0), 16 << 30, "kernel bytes\x00\x00\x10\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []byte
			var err error
			n := allocated(func() { out, err = Gunzip(tt.in, tt.limit) })
			if err != nil || string(out) != tt.want {
				t.Errorf("Gunzip = %q, %v; want %q", out, err, tt.want)
			}
			// The gzip reader's own state (its 32 KiB window, tables)
			// is most of it.
			if n > 256<<10 {
				t.Errorf("allocated %d bytes for %d bytes of data", n, len(tt.in))
			}
		})
	}
}

// TestGunzipLimit: the limit counts the output, whether it fills the first
// buffer exactly, needs one more chunk, or is empty.
func TestGunzipLimit(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		limit uint64
		want  string
		large bool
	}{
		{"empty at limit 0", gz(t, nil), 0, "", false},
		{"one byte past limit 0", gz(t, []byte("x")), 0, "", true},
		{"exactly the limit", gz(t, []byte("abc")), 3, "abc", false},
		{"one byte past the limit", gz(t, []byte("abcd")), 3, "", true},
		{"padding past the limit", append(gz(t, []byte("abc")), 0), 3, "", true},
		{"two members at the limit", bytes.Repeat(gz(t, []byte("ab")), 2), 4, "abab", false},
	}
	for _, tt := range tests {
		out, err := Gunzip(tt.in, tt.limit)
		if tt.large != errors.Is(err, ErrTooLarge) || (!tt.large && err != nil) || string(out) != tt.want {
			t.Errorf("%s: Gunzip = %q, %v", tt.name, out, err)
		}
	}
}

// TestGunzipOneMemberMemory: a single gzip member, its trailer right,
// costs little more than its size. The output filled the buffer sized
// from the trailer exactly, the read that only met the end allocated
// another chunk, and the two were joined into a copy: 2.07 times the
// size.
func TestGunzipOneMemberMemory(t *testing.T) {
	for _, size := range []int{5 << 20, 16 << 20} {
		t.Run(fmt.Sprintf("%d MiB", size>>20), func(t *testing.T) {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*7 + i>>12)
			}
			in := gz(t, data)
			var out []byte
			var err error
			n := allocated(func() { out, err = Gunzip(in, MaxSize) })
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("Gunzip = %d bytes, %v; want the %d bytes compressed", len(out), err, size)
			}
			if max := 1.1 * float64(size); float64(n) > max {
				t.Errorf("allocated %d bytes for %d bytes of output, more than %.0f", n, size, max)
			}
		})
	}
}
