// Package kernelimage reads kernel images as NetBSD ships them: plain, or
// gzip-compressed (netbsd-GENERIC.gz) whatever the file's name.
package kernelimage

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// MaxSize bounds a decompressed kernel (NetBSD GENERIC is about 25 MiB), so
// a hostile file cannot expand without limit.
const MaxSize = 512 << 20

// Decompress returns raw, gunzipped when it starts with the gzip magic, and
// whether it was.
func Decompress(raw []byte) (data []byte, gzipped bool, err error) {
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		return raw, false, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, true, fmt.Errorf("gzip header: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxSize+1))
	if err != nil {
		return nil, true, fmt.Errorf("gzip data after %d bytes: %w (is the download truncated?)", len(out), err)
	}
	if len(out) > MaxSize {
		return nil, true, fmt.Errorf("gzip data expands past %d MiB: not a kernel", MaxSize>>20)
	}
	return out, true, nil
}
