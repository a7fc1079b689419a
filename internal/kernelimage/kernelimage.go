// Package kernelimage reads kernel images as NetBSD ships them: plain, or
// gzip-compressed (netbsd-GENERIC.gz) whatever the file's name.
package kernelimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/smolvmm/smolvmm/internal/regfile"
)

// MaxSize bounds a kernel image, plain or decompressed (NetBSD GENERIC is
// about 25 MiB), so a hostile file cannot expand without limit.
const MaxSize = 512 << 20

// Decompress returns raw, gunzipped when it starts with the gzip magic, and
// whether it was. It reads the file as Gunzip does. An image, plain or
// gunzipped, larger than MaxSize is refused.
func Decompress(raw []byte) (data []byte, gzipped bool, err error) {
	if !IsGzip(raw) {
		if len(raw) > MaxSize {
			return nil, false, fmt.Errorf("the image is %s, more than the %d MiB a kernel may be", regfile.Size(int64(len(raw))), MaxSize>>20)
		}
		return raw, false, nil
	}
	out, err := Gunzip(raw, MaxSize)
	if errors.Is(err, ErrTooLarge) {
		return nil, true, fmt.Errorf("gzip data expands past %d MiB: not a kernel", MaxSize>>20)
	}
	if err != nil {
		return nil, true, fmt.Errorf("%w (is the download truncated?)", err)
	}
	return out, true, nil
}

// IsGzip reports whether b starts with the gzip magic.
func IsGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// ErrTooLarge is matched (errors.Is) by Gunzip's error for data that
// expands past its limit.
var ErrTooLarge = errors.New("gzip data expands past the limit")

// Gunzip decompresses raw as NetBSD's /boot reads a gzipped file through
// libsa's cread (sys/lib/libsa/cread.c): one gzip member, then the next
// while the bytes after a member are the gzip magic (:398-405 calls
// check_header, :189-254), and whatever else follows verbatim: check_header
// marks the rest uncompressed (:211-216) and read copies it as it stands
// (:339-358). A lone 0x1f there is dropped, as check_header consumes it.
// So padding after a gzip file is no error; it reaches the reader as it
// reaches the kernel. Data that expands past limit bytes is refused
// (ErrTooLarge) once limit+1 bytes are out, having kept none of them.
//
// The result is allocated once, at the size the gzip trailer gives (the
// last member's, which is the whole size for a file of one member), and,
// should that size be wrong, once more at the size found, after a second
// pass: memory never grows by doubling past the limit.
func Gunzip(raw []byte, limit uint64) ([]byte, error) {
	if !IsGzip(raw) {
		return raw, nil
	}
	limit = min(limit, 1<<62)
	var hint uint64
	if len(raw) >= 4 {
		hint = uint64(binary.LittleEndian.Uint32(raw[len(raw)-4:]))
	}
	if hint > limit {
		hint = 0
	}
	out := make([]byte, hint)
	n, err := inflate(raw, limit, out)
	switch {
	case err != nil:
		return nil, err
	case n > limit:
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)
	case n < hint:
		return append([]byte(nil), out[:n]...), nil
	case n > hint:
		out = make([]byte, n)
		if _, err := inflate(raw, limit, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inflate decompresses raw as Gunzip describes into dst, counting what
// does not fit there, and returns the count: at most limit+1, where it
// stops.
func inflate(raw []byte, limit uint64, dst []byte) (uint64, error) {
	s := sink{dst: dst, limit: limit}
	rest := raw
	br := bytes.NewReader(nil)
	// A bufio.Reader is an io.ByteReader, so the gzip reader reads no byte
	// past the member's end: what br gave out less what bb still holds is
	// the member's length. Both, and the gzip reader, serve every member:
	// a file of many tiny members allocates no state for each.
	bb := bufio.NewReader(br)
	var zr *gzip.Reader
	for IsGzip(rest) {
		off := len(raw) - len(rest)
		br.Reset(rest)
		bb.Reset(br)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bb)
		} else {
			err = zr.Reset(bb)
		}
		if err != nil {
			return s.n, fmt.Errorf("gzip member at file offset %d: bad gzip header: %w", off, err)
		}
		zr.Multistream(false)
		if err := s.readFrom(zr); err != nil {
			return s.n, fmt.Errorf("gzip member at file offset %d: data corrupt after %d decompressed bytes: %w", off, s.n, err)
		}
		if s.n > limit {
			return s.n, nil
		}
		rest = rest[len(rest)-br.Len()-bb.Buffered():]
	}
	if len(rest) > 0 && rest[0] == 0x1f {
		rest = rest[1:]
	}
	return s.n, s.readFrom(bytes.NewReader(rest))
}

// sink takes inflate's output: into dst while it has room, then only
// counted, up to limit+1 bytes.
type sink struct {
	dst     []byte
	n       uint64
	limit   uint64
	scratch []byte
}

// readFrom reads r to its end, or until s holds limit+1 bytes.
func (s *sink) readFrom(r io.Reader) error {
	for s.n <= s.limit {
		var b []byte
		if s.n < uint64(len(s.dst)) {
			b = s.dst[s.n:]
		} else {
			if s.scratch == nil {
				s.scratch = make([]byte, 32<<10)
			}
			b = s.scratch
		}
		b = b[:min(uint64(len(b)), s.limit+1-s.n)]
		k, err := r.Read(b)
		s.n += uint64(k)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}
