package kstrip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaxImage bounds a decompressed kernel; NetBSD GENERIC kernels are about
// 25 MiB, so anything past this is not a kernel (or is a gzip bomb).
const MaxImage = 512 << 20

// File is a kernel file read into memory, decompressed.
type File struct {
	// Data is the uncompressed image.
	Data []byte
	// Gzipped says the file on disk was gzip-compressed.
	Gzipped bool
	// Mode is the file's permission bits, given to files written for it.
	Mode fs.FileMode
}

// ReadFile reads a kernel, decompressing it when it starts with the gzip
// magic, whatever its name.
func ReadFile(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	f := &File{Data: raw, Mode: st.Mode().Perm()}
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		f.Gzipped = true
		if f.Data, err = gunzip(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return f, nil
}

func gunzip(raw []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("gzip header: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxImage+1))
	if err != nil {
		return nil, fmt.Errorf("gzip data after %d bytes: %w (is the download truncated?)", len(out), err)
	}
	if len(out) > MaxImage {
		return nil, fmt.Errorf("gzip data expands past %d MiB: not a kernel", MaxImage>>20)
	}
	return out, nil
}

// WantsGzip reports whether a kernel written to path is compressed: only
// when its name ends in ".gz".
func WantsGzip(path string) bool { return strings.HasSuffix(path, ".gz") }

// WriteFile replaces path with data (gzip-compressed when compress is
// set) through a temporary file in the same directory, fsync and rename,
// so a crash leaves the old file or the new one, never half of one. The
// compressed form carries no name or time, so equal data gives equal bytes.
func WriteFile(path string, data []byte, compress bool, mode fs.FileMode) (err error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".kstrip-*")
	if err != nil {
		return fmt.Errorf("temporary file next to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if compress {
		zw, _ := gzip.NewWriterLevel(tmp, gzip.DefaultCompression)
		if _, err = zw.Write(data); err == nil {
			err = zw.Close()
		}
	} else {
		_, err = tmp.Write(data)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
