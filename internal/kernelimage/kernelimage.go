// Package kernelimage reads kernel images as NetBSD ships them: plain, or
// gzip-compressed (netbsd-GENERIC.gz) whatever the file's name.
package kernelimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
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
	if err != nil {
		return nil, true, fmt.Errorf("%w (is the download truncated?)", err)
	}
	if len(out) > MaxSize {
		return nil, true, fmt.Errorf("gzip data expands past %d MiB: not a kernel", MaxSize>>20)
	}
	return out, true, nil
}

// IsGzip reports whether b starts with the gzip magic.
func IsGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// Gunzip decompresses raw as NetBSD's /boot reads a gzipped file through
// libsa's cread (sys/lib/libsa/cread.c): one gzip member, then the next
// while the bytes after a member are the gzip magic (:398-405 calls
// check_header, :189-254), and whatever else follows verbatim: check_header
// marks the rest uncompressed (:211-216) and read copies it as it stands
// (:339-358). A lone 0x1f there is dropped, as check_header consumes it.
// So padding after a gzip file is no error; it reaches the reader as it
// reaches the kernel. Gunzip stops after limit+1 bytes: a result longer
// than limit means the file expands past it.
func Gunzip(raw []byte, limit uint64) ([]byte, error) {
	if !IsGzip(raw) {
		return raw, nil
	}
	limit = min(limit, 1<<62)
	var out bytes.Buffer
	rest := raw
	for IsGzip(rest) {
		off := len(raw) - len(rest)
		br := bytes.NewReader(rest)
		// A bufio.Reader is an io.ByteReader, so the gzip reader reads
		// no byte past the member's end: what br gave out less what bb
		// still holds is the member's length.
		bb := bufio.NewReader(br)
		zr, err := gzip.NewReader(bb)
		if err != nil {
			return nil, fmt.Errorf("gzip member at file offset %d: bad gzip header: %w", off, err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(&out, io.LimitReader(zr, int64(limit+1)-int64(out.Len()))); err != nil {
			return nil, fmt.Errorf("gzip member at file offset %d: data corrupt after %d decompressed bytes: %w", off, out.Len(), err)
		}
		if uint64(out.Len()) > limit {
			return out.Bytes(), nil
		}
		rest = rest[len(rest)-br.Len()-bb.Buffered():]
	}
	if len(rest) > 0 && rest[0] == 0x1f {
		rest = rest[1:]
	}
	out.Write(rest[:min(uint64(len(rest)), limit+1-uint64(out.Len()))])
	return out.Bytes(), nil
}
