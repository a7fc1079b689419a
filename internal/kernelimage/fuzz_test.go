package kernelimage

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
)

// FuzzGunzip reads arbitrary bytes followed by padding through Gunzip
// under an arbitrary limit. Data that is not gzip comes back as it
// stands; otherwise Gunzip fails with ErrTooLarge or ErrCorrupt only,
// and what it returns holds limit bytes at most. Where the standard
// library reads the bytes as whole gzip members, Gunzip returns what it
// does followed by the padding as libsa's cread passes it (a leading lone
// 0x1f dropped), or ErrTooLarge exactly when that is more than limit. And
// the limit is exact: output of n bytes comes back the same under limit
// n, and is refused as too large under n-1.
func FuzzGunzip(f *testing.F) {
	member := gz(f, []byte("kernel bytes"))
	badCRC := bytes.Clone(member)
	badCRC[len(badCRC)-8] ^= 0xff
	big := gz(f, bytes.Repeat([]byte("b"), 70000)) // past the first chunk
	f.Add(member, []byte(nil), uint32(100))
	f.Add(member, []byte(nil), uint32(12)) // exactly the limit
	f.Add(member, []byte(nil), uint32(11))
	f.Add(append(gz(f, []byte("a")), big...), []byte(nil), uint32(1<<20))
	f.Add(big, []byte{0, 0, 0, 0}, uint32(70004)) // a wrong trailer sizes the buffer
	f.Add(member, []byte{0x1f}, uint32(100))
	f.Add(member, []byte("\x1fxy"), uint32(100))
	f.Add(member, member, uint32(24))
	f.Add(member, member[:12], uint32(100)) // a second member cut short
	f.Add(badCRC, []byte(nil), uint32(100))
	f.Add(gz(f, nil), []byte(nil), uint32(0))
	f.Add([]byte("\x7fELF"), []byte("plain"), uint32(0))
	f.Fuzz(func(t *testing.T, raw, pad []byte, limit uint32) {
		data := append(bytes.Clone(raw), pad...)
		out, err := Gunzip(data, uint64(limit))
		if !IsGzip(data) {
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("not gzip data: Gunzip = %d bytes, %v; want the %d bytes as they stand", len(out), err, len(data))
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is neither ErrTooLarge nor ErrCorrupt", err)
			}
		} else if uint64(len(out)) > uint64(limit) {
			t.Fatalf("%d bytes out, limit %d", len(out), limit)
		}

		want, ok := members(data)
		if !ok && !IsGzip(pad) {
			if want, ok = members(raw); ok {
				if len(pad) > 0 && pad[0] == 0x1f {
					pad = pad[1:]
				}
				want = append(want, pad...)
			}
		}
		switch {
		case !ok:
		case len(want) > int(limit):
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d bytes of data past limit %d; Gunzip: %d bytes, %v", len(want), limit, len(out), err)
			}
		case err != nil:
			t.Fatalf("%d bytes of data within limit %d; Gunzip fails: %v", len(want), limit, err)
		case !bytes.Equal(out, want):
			t.Fatalf("Gunzip gives %d bytes, the standard library and padding %d", len(out), len(want))
		}

		if err != nil {
			return
		}
		n := uint64(len(out))
		if again, err := Gunzip(data, n); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("under limit %d, its own size: %d bytes, %v; under %d: %d bytes", n, len(again), err, limit, n)
		}
		if n > 0 {
			if _, err := Gunzip(data, n-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d bytes under limit %d: %v, want ErrTooLarge", n, n-1, err)
			}
		}
	})
}

// members is what the standard library reads from b as a stream of
// gzip members, and whether it reads b whole so.
func members(b []byte) ([]byte, bool) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(zr)
	return out, err == nil
}
