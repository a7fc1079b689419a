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
// gunzipped, larger than MaxSize is refused (ErrTooLarge); gzip data that
// does not decompress, with ErrCorrupt. The errors state what is wrong
// and leave what to do to the caller, who knows where the file came from.
func Decompress(raw []byte) (data []byte, gzipped bool, err error) {
	if !IsGzip(raw) {
		if len(raw) > MaxSize {
			return nil, false, &sentinelError{fmt.Errorf("the image is %s, more than the %d MiB a kernel may be", regfile.Size(int64(len(raw))), MaxSize>>20), ErrTooLarge}
		}
		return raw, false, nil
	}
	out, err := Gunzip(raw, MaxSize)
	if errors.Is(err, ErrTooLarge) {
		return nil, true, &sentinelError{fmt.Errorf("gzip data expands past the %d MiB a kernel may be", MaxSize>>20), ErrTooLarge}
	}
	if err != nil {
		return nil, true, err
	}
	return out, true, nil
}

// IsGzip reports whether b starts with the gzip magic.
func IsGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// ErrTooLarge is matched (errors.Is) by Gunzip's error for data that
// expands past its limit, and by Decompress's for an image larger than
// MaxSize.
var ErrTooLarge = errors.New("gzip data expands past the limit")

// ErrCorrupt is matched (errors.Is) by Gunzip's and Decompress's error for
// gzip data that does not decompress: a bad header, a cut-short member, a
// wrong checksum. The error's own text says which and where.
var ErrCorrupt = errors.New("corrupt gzip data")

// sentinelError is err, in its own words, matched by errors.Is to is as
// well as to what err wraps.
type sentinelError struct {
	err error
	is  error
}

func (e *sentinelError) Error() string        { return e.err.Error() }
func (e *sentinelError) Unwrap() error        { return e.err }
func (e *sentinelError) Is(target error) bool { return target == e.is }

// ErrKASLR: an amd64 NetBSD kernel linked relocatable for KASLR
// (GENERIC_KASLR), which only NetBSD's prekern places, at boot. kstrip
// and netbsdboot both refuse it and export it as their ErrKASLR, so one
// errors.Is tells it whichever refused it.
var ErrKASLR = errors.New("NetBSD KASLR kernel")

// Gunzip decompresses raw as NetBSD's /boot reads a gzipped file through
// libsa's cread (sys/lib/libsa/cread.c): one gzip member, then the next
// while the bytes after a member are the gzip magic (:398-405 calls
// check_header, :189-254), and whatever else follows verbatim: check_header
// marks the rest uncompressed (:211-216) and read copies it as it stands
// (:339-358). A lone 0x1f there is dropped, as check_header consumes it.
// So padding after a gzip file is no error; it reaches the reader as it
// reaches the kernel. Data that expands past limit bytes is refused
// (ErrTooLarge) once limit+1 bytes are out, having kept none of them;
// data that does not decompress, with ErrCorrupt.
//
// The last four bytes of raw (the gzip trailer's size when one member ends
// the data) size the first buffer only when deflate could expand raw that
// far and limit allows it: they may be padding or a lie. Output past that
// buffer goes to further chunks, never more than limit bytes in all,
// joined into one slice at the end: the data is inflated once, what
// expands past limit costs about limit bytes, and data whose trailer is
// wrong (several members, padding) costs its size twice.
func Gunzip(raw []byte, limit uint64) ([]byte, error) {
	if !IsGzip(raw) {
		return raw, nil
	}
	limit = min(limit, 1<<62)
	s := sink{limit: limit}
	if len(raw) >= 4 {
		hint := uint64(binary.LittleEndian.Uint32(raw[len(raw)-4:]))
		if hint <= limit && hint <= uint64(len(raw))*maxRatio {
			s.next = hint
		}
	}
	if err := inflate(raw, &s); err != nil {
		return nil, err
	}
	if s.n > limit {
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)
	}
	return s.bytes(), nil
}

// maxRatio is the most deflate expands its input: a 258-byte match
// takes at least two bits.
const maxRatio = 1032

// inflate decompresses raw as Gunzip describes into s, which stops taking
// bytes past its limit.
func inflate(raw []byte, s *sink) error {
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
			return &sentinelError{fmt.Errorf("gzip member at file offset %d: bad gzip header: %w", off, err), ErrCorrupt}
		}
		zr.Multistream(false)
		if err := s.readFrom(zr); err != nil {
			return &sentinelError{fmt.Errorf("gzip member at file offset %d: data corrupt after %d decompressed bytes: %w", off, s.n, err), ErrCorrupt}
		}
		if s.n > s.limit {
			return nil
		}
		rest = rest[len(rest)-br.Len()-bb.Buffered():]
	}
	if len(rest) > 0 && rest[0] == 0x1f {
		rest = rest[1:]
	}
	return s.readFrom(bytes.NewReader(rest))
}

// sink takes inflate's output into chunks, allocated as it comes so that
// no byte is copied while it grows, up to limit bytes; one more byte is
// only counted, to tell data that expands past limit.
type sink struct {
	chunks [][]byte // full but for the last
	n      uint64   // bytes taken, in chunks and the one counted past limit
	limit  uint64
	next   uint64 // the next chunk's size, when not 0
}

// Chunk sizes past the first, which is the trailer's size when that is
// plausible: small for small data, and no more than chunkMax unused.
const (
	chunkMin = 32 << 10
	chunkMax = 1 << 20
)

// readFrom reads r to its end, or until s holds limit+1 bytes.
func (s *sink) readFrom(r io.Reader) error {
	var one [1]byte
	for s.n <= s.limit {
		var k int
		var err error
		if s.n == s.limit || s.full() {
			// Past limit a byte is only counted. With the last chunk
			// full (as one sized from a right trailer ends), one byte
			// tells whether another chunk is needed: the read that meets
			// the end would otherwise allocate one for nothing, and
			// bytes would join the two in a copy.
			k, err = r.Read(one[:])
			if k > 0 && s.n < s.limit {
				last := s.room()
				*last = append(*last, one[0])
			}
		} else {
			last := s.room()
			k, err = r.Read((*last)[len(*last):cap(*last)])
			*last = (*last)[:len(*last)+k]
		}
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

// full reports whether s has a chunk and the last one is full.
func (s *sink) full() bool {
	if len(s.chunks) == 0 {
		return false
	}
	last := s.chunks[len(s.chunks)-1]
	return len(last) == cap(last)
}

// room returns the last chunk, adding one when it is full; s holds less
// than limit bytes.
func (s *sink) room() *[]byte {
	if len(s.chunks) > 0 {
		if last := &s.chunks[len(s.chunks)-1]; len(*last) < cap(*last) {
			return last
		}
	}
	size := s.next
	s.next = 0
	if size == 0 {
		size = min(max(s.n, chunkMin), chunkMax)
	}
	s.chunks = append(s.chunks, make([]byte, 0, min(size, s.limit-s.n)))
	return &s.chunks[len(s.chunks)-1]
}

// bytes returns what s took, in one slice: the only chunk, or a copy of
// all of them. A chunk mostly unused (the trailer's size was wrong) is
// copied so as not to hold the memory.
func (s *sink) bytes() []byte {
	if len(s.chunks) == 1 {
		if c := s.chunks[0]; cap(c)-len(c) <= len(c)/8 {
			return c
		}
	}
	out := make([]byte, 0, s.n)
	for i, c := range s.chunks {
		out = append(out, c...)
		s.chunks[i] = nil
	}
	return out
}
