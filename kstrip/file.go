package kstrip

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// MaxImage bounds a kernel file and its decompressed image; NetBSD GENERIC
// kernels are about 25 MiB, so anything past this is not a kernel (or is
// a gzip bomb).
const MaxImage = kernelimage.MaxSize

// File is a kernel file read into memory, decompressed.
type File struct {
	// Data is the uncompressed image.
	Data []byte
	// Gzipped says the file on disk was gzip-compressed.
	Gzipped bool
	// Mode is the file's permission bits, given to a new file written for
	// it (a file replaced keeps its own).
	Mode fs.FileMode
}

// ReadFile reads a kernel, decompressing it when it starts with the gzip
// magic, whatever its name. A file larger than MaxImage (matching
// ErrTooLarge), one that is not a regular file, or one that starts with
// neither the ELF nor the gzip magic (ErrNotELF) is refused before the
// rest of it is read: a huge file read whole fills memory first.
func ReadFile(path string) (*File, error) {
	fh, size, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if size > MaxImage {
		return nil, &regfile.TooLargeError{Path: path, Size: size, Limit: MaxImage}
	}
	magic := make([]byte, len(elf.ELFMAG))
	n, err := io.ReadFull(fh, magic)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	magic = magic[:n]
	if n == 0 {
		return nil, fmt.Errorf("%s: %w", path, &NotELFError{Empty: true})
	}
	if !isELF(magic) && !kernelimage.IsGzip(magic) {
		return nil, fmt.Errorf("%s: %w", path, notELF(magic))
	}
	// Sized from the stat (ReadFrom wants MinRead bytes free to see the
	// end without growing), and cut one byte past the limit should the
	// file grow meanwhile.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	buf.Write(magic)
	if _, err := buf.ReadFrom(io.LimitReader(fh, MaxImage+1-int64(n))); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if buf.Len() > MaxImage {
		return nil, &regfile.TooLargeError{Path: path, Size: -1, Limit: MaxImage}
	}
	f := &File{Mode: st.Mode().Perm()}
	if f.Data, f.Gzipped, err = kernelimage.Decompress(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ErrNotRegular is matched by WriteFile's error for an output that exists
// and is not a regular file (a device, FIFO, socket or directory): such a
// file is never replaced.
var ErrNotRegular = atomicfile.ErrNotRegular

// WantsGzip reports whether a kernel written to path is compressed: only
// when its name ends in ".gz". WriteFile replaces a symlink's target, so
// a caller writing through a link asks of the target's name (as
// atomicfile.Target gives it), not the link's.
func WantsGzip(path string) bool { return strings.HasSuffix(path, ".gz") }

// WriteFile replaces path with data (gzip-compressed when compress is
// set) through a temporary file in the same directory, fsync and rename,
// so a crash leaves the old file or the new one, never half of one. A new
// file gets mode; a replaced one keeps its permission bits, owner and
// group (as far as this process may give them), not its setuid, setgid or
// sticky bit (see atomicfile.Write). A symlink is followed (its target is
// replaced, the link stays); an
// existing target that is not a regular file is refused, matching
// atomicfile.ErrNotRegular. The compressed form carries no name or time, so equal data gives equal bytes.
func WriteFile(path string, data []byte, compress bool, mode fs.FileMode) error {
	return WriteFileContext(context.Background(), path, data, compress, mode)
}

// writeChunk is how much WriteFileContext writes between looks at its
// context: a signal stops a large kernel's compression within it.
const writeChunk = 1 << 20

// WriteFileContext is WriteFile, stopped when ctx ends before the new
// file is renamed over path: the temporary file is removed, path is left
// as it was, and the error matches ctx's cause (context.Cause).
func WriteFileContext(ctx context.Context, path string, data []byte, compress bool, mode fs.FileMode) error {
	return atomicfile.WriteContext(ctx, path, mode, func(f *os.File) error {
		w := io.Writer(f)
		var zw *gzip.Writer
		if compress {
			zw, _ = gzip.NewWriterLevel(f, gzip.DefaultCompression)
			w = zw
		}
		for rest := data; len(rest) > 0; {
			if ctx.Err() != nil {
				return fmt.Errorf("writing %s stopped: %w", path, context.Cause(ctx))
			}
			n := min(len(rest), writeChunk)
			if _, err := w.Write(rest[:n]); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
			rest = rest[n:]
		}
		if zw != nil {
			return zw.Close()
		}
		return nil
	})
}
