package fstree

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// AddTar reads a tar stream into t. Entries are applied in order, so a
// duplicate path takes the last entry. name is used in error messages,
// which number the entries from 1, as `tar tv` lists them.
//
// A modification time ext2 cannot store is clamped to the nearest it does
// (see MinTime), and one warning for the set added to t.Warnings, naming
// the first such entry.
func (t *Tree) AddTar(r io.Reader, name string) error {
	return t.addTar(r, name, "the archive")
}

// addTar is AddTar, its errors giving offsets in r, which is what: "the
// archive", or "the decompressed archive" of a compressed set.
func (t *Tree) addTar(r io.Reader, name, what string) error {
	// The tar reader buffers nothing: the bytes it has read are where it
	// is in r, the offset a damaged archive is reported at.
	at := &tarPos{cr: &countReader{r: r}, what: what}
	tr := tar.NewReader(at.cr)
	content := t.newHoleReader(tr, at.cr)
	var clamped clampedTimes
	for i := 1; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			clamped.warn(t, name)
			return nil
		}
		if i == 1 && errors.Is(err, tar.ErrHeader) {
			err = &firstHeaderError{err}
		}
		if err != nil {
			return fmt.Errorf("%s: entry %d: corrupt or truncated archive at byte %d of %s: %w", name, i, at.cr.n, at.what, err)
		}
		if err := t.addTarEntry(content, h, &clamped, at); err != nil {
			if content.err != nil { // not a corrupt archive
				err = content.err
			}
			return fmt.Errorf("%s: entry %d (%s): %w", name, i, termsafe.Printable(shorten(h.Name)), err)
		}
	}
}

// GNU tar's entry types that archive/tar names no constant for.
const (
	gnuVolumeLabel = 'V' // tar --label: the archive's name, no path
	gnuDumpDir     = 'D' // tar --listed-incremental: a directory, its data the names it held
	gnuMultiVolume = 'M' // tar --multi-volume: the rest of a file begun in the volume before
)

// tarPos is where addTar is in its tar stream, and what that stream is.
type tarPos struct {
	cr   *countReader
	what string
}

// tarID is h's owner id of PAX record key ("uid" or "gid"), v as
// archive/tar gives it. archive/tar keeps ids in an int: where that is 32
// bits, it cuts a PAX record's id to them (2^32 to root, 2^31 to
// -2147483648), so the record, which it has checked is a decimal int64,
// is read again here. A header field's id past 2^31 (base-256) comes as
// a negative int there, whose 32 bits are the id a 64-bit host reads; one
// past 32 bits, or negative, only archive/tar saw whole.
func tarID(h *tar.Header, key string, v int) int64 {
	if rec, ok := h.PAXRecords[key]; ok {
		if id, err := strconv.ParseInt(rec, 10, 64); err == nil {
			return id
		}
	}
	if strconv.IntSize == 32 && v < 0 {
		return int64(uint32(v))
	}
	return int64(v)
}

func (t *Tree) addTarEntry(tr io.Reader, h *tar.Header, clamped *clampedTimes, at *tarPos) error {
	switch h.Typeflag {
	case gnuVolumeLabel:
		return nil // checked as a path, a label such as "Backup 1/2" would be refused
	case gnuMultiVolume:
		return errors.New("a continuation of a file begun in an earlier volume of a multi-volume archive (GNU tar --multi-volume): join the volumes into one archive (extract them with tar --multi-volume and archive the tree again)")
	}
	p, err := Clean(h.Name)
	if err != nil {
		return err
	}
	// ext2 holds 32-bit ids; a larger one would wrap (2^32 to root), so it
	// is refused as GNU tar refuses it.
	uid, gid := tarID(h, "uid", h.Uid), tarID(h, "gid", h.Gid)
	if uid < 0 || uid > 0xFFFFFFFF || gid < 0 || gid > 0xFFFFFFFF {
		return fmt.Errorf("owner %d:%d out of range: a uid and a gid are 0 to 4294967295", uid, gid)
	}
	attrs := func(n *Node) *Node {
		n.Perm = uint16(h.Mode & 07777)
		n.UID, n.GID = uint32(uid), uint32(gid)
		if !h.ModTime.IsZero() {
			n.Mtime, n.MtimeSet = clamped.mtime(h.Name, h.ModTime.Unix()), true
		}
		return n
	}
	switch h.Typeflag {
	// The reader turns old TypeRegA into TypeReg; a contiguous file is
	// a regular one everywhere but on the systems that made it, as GNU
	// tar and NetBSD's tar read it.
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		if p == "" {
			return fmt.Errorf("a regular file cannot be the root")
		}
		if h.Size < 0 {
			return fmt.Errorf("negative size %d", h.Size)
		}
		if err := t.checkSize(h.Size); err != nil {
			return err
		}
		t.taking(p)
		n, err := readContent(tr, h.Size, t.takeFunc())
		t.taken()
		if ce := (*contentError)(nil); errors.As(err, &ce) {
			return fmt.Errorf("reading content (%d bytes): truncated or corrupt archive at byte %d of %s (byte %d of its content): %w", h.Size, at.cr.n, at.what, ce.off, ce.err)
		}
		if err != nil {
			return err
		}
		return t.Put(p, attrs(n))
	// A dumpdir's list of names only tells an incremental restore what
	// to delete; GNU tar and bsdtar extract it as the directory.
	case tar.TypeDir, gnuDumpDir:
		return t.Put(p, attrs(NewDir(0)))
	case tar.TypeSymlink:
		if err := CheckSymlink(p, h.Linkname); err != nil {
			return err
		}
		return t.Put(p, attrs(NewSymlink(h.Linkname)))
	case tar.TypeLink:
		target, err := Clean(h.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		// A link to itself keeps a file the set already holds (an
		// archiver writes one for a file given twice); with none there,
		// Link reports the missing target rather than the entry vanishing.
		if target == p {
			if _, err := t.Get(p); err == nil {
				return nil
			}
		}
		return t.Link(p, target)
	case tar.TypeChar, tar.TypeBlock:
		typ := CharDev
		if h.Typeflag == tar.TypeBlock {
			typ = BlockDev
		}
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 0xfff || h.Devminor > 0xfffff {
			return fmt.Errorf("device number %d,%d out of range (major <= 4095, minor <= 1048575)", h.Devmajor, h.Devminor)
		}
		return t.Put(p, attrs(NewDevice(typ, 0, uint32(h.Devmajor), uint32(h.Devminor))))
	case tar.TypeFifo:
		return t.Put(p, attrs(&Node{Type: FIFO}))
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
}

// MaxFileSize is the largest regular file a set may hold (4 GiB).
const MaxFileSize = 4 << 30

// ErrFileTooLarge is wrapped by the error for a regular file of a set
// larger than MaxFileSize (or Tree.FileLimit).
var ErrFileTooLarge = errors.New("file too large for a set")

// checkSize refuses a regular file of size bytes larger than t reads.
func (t *Tree) checkSize(size int64) error {
	limit := int64(MaxFileSize)
	if t.FileLimit > 0 {
		limit = min(limit, t.FileLimit)
	}
	if size > limit {
		return fmt.Errorf("%w: it has %d bytes, more than the %d a set's file may hold", ErrFileTooLarge, size, limit)
	}
	return nil
}

// holeGrain is the unit readContent keeps or drops: the larger ext2 block
// size and a page. Zeros kept cost memory; a finer unit would keep fewer,
// and make more extents of files that are not sparse at all.
const holeGrain = 4 << 10

// readContent reads a member of the given size, in chunks of ReadChunk
// bytes, and keeps only its holeGrain-aligned runs holding a non-zero
// byte: the others are holes, as the image writers leave all-zero blocks
// anyway. So a member costs memory for its data only, whatever its zeros:
// a sparse member's holes, and a dense member's zeros, which compress
// about 1000 to 1, come from a few bytes of archive. Memory grows with
// the data actually read, so a header claiming a large size costs nothing.
// After each chunk, take (when not nil) is told what it kept, and its
// error stops the read.
func readContent(r io.Reader, size int64, take func(usage) error) (*Node, error) {
	n := &Node{Type: Regular, Size: size}
	buf := make([]byte, min(ReadChunk, size))
	var data []byte // the extent being read, from start on
	var start int64
	var room roomCounter
	endExtent := func() {
		if len(data) == 0 {
			return
		}
		// Room grown for data that turned out zeros is given back.
		if cap(data)-len(data) > len(data)/8 {
			data = append([]byte(nil), data...)
		}
		n.Extents = append(n.Extents, Extent{Off: start, Data: data})
		data = nil
	}
	for off := int64(0); off < size; {
		chunk := buf[:min(int64(len(buf)), size-off)]
		if got, err := io.ReadFull(r, chunk); err != nil {
			if err == io.EOF { // nothing of the chunk read, but it was due
				err = io.ErrUnexpectedEOF
			}
			return nil, &contentError{off + int64(got), err}
		}
		var kept usage
		if int64(len(chunk)) == size && !hasZeroGrain(chunk) {
			data = chunk // most files: the member whole, kept as read
			kept = usage{int64(len(chunk)), room.add(0, chunk)}
			off = size
		}
		for off < size && len(chunk) > 0 {
			b := chunk[:min(holeGrain, len(chunk))]
			chunk = chunk[len(b):]
			if IsZero(b) {
				endExtent()
				off += int64(len(b))
				continue
			}
			if len(data) == 0 {
				start = off
			}
			if cap(data)-len(data) < len(b) {
				// Double, but not past the member's end, so a member
				// that is all data ends in a buffer of its size.
				grown := make([]byte, len(data), len(data)+max(len(b), int(min(int64(len(data)), size-off))))
				copy(grown, data)
				data = grown
			}
			data = append(data, b...)
			kept.mem += int64(len(b))
			kept.room += room.add(off, b)
			off += int64(len(b))
		}
		if take != nil {
			if err := take(kept); err != nil {
				return nil, err
			}
		}
	}
	endExtent()
	n.room = room.room
	return n, nil
}

// hasZeroGrain reports whether b has an all-zero holeGrain-aligned run.
func hasZeroGrain(b []byte) bool {
	for len(b) > 0 {
		if IsZero(b[:min(holeGrain, len(b))]) {
			return true
		}
		b = b[min(holeGrain, len(b)):]
	}
	return false
}

// contentError is readContent's error: err, after off bytes of the member.
type contentError struct {
	off int64
	err error
}

func (e *contentError) Error() string {
	return fmt.Sprintf("at byte %d of its content: %v", e.off, e.err)
}
func (e *contentError) Unwrap() error { return e.err }

// IsZero reports whether b holds only zero bytes: such runs become holes
// in sparse files, here and in the image writers. It runs over every block
// of every file, so it tests 32 bytes at a time.
func IsZero(b []byte) bool {
	le := binary.LittleEndian
	for len(b) >= 32 {
		if le.Uint64(b)|le.Uint64(b[8:])|le.Uint64(b[16:])|le.Uint64(b[24:]) != 0 {
			return false
		}
		b = b[32:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Compression of a set file, detected from its first bytes.
const (
	compNone = iota
	compGzip
	compXZ
)

// compNames names each compression in messages.
var compNames = map[int]string{compGzip: "gzip", compXZ: "xz"}

// firstHeaderError is AddTar's error for a stream whose very first header
// is not a tar header: no archive at all rather than a damaged one.
type firstHeaderError struct{ err error }

func (e *firstHeaderError) Error() string { return e.err.Error() }
func (e *firstHeaderError) Unwrap() error { return e.err }

func sniff(head []byte) (int, error) {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return compGzip, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return compXZ, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar", tarChecksum(head):
		return compNone, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return 0, fmt.Errorf("bzip2 compression is not supported: recompress the set as .tgz or .tar.xz")
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return 0, fmt.Errorf("zstd compression is not supported: recompress the set as .tgz or .tar.xz")
	}
	return 0, fmt.Errorf("unknown format (not gzip, xz or tar): a set must be a .tgz, .tar.xz, .tar or a directory")
}

// tarChecksum reports whether head starts with a tar header by its
// checksum (octal, at 148): a header without the "ustar" magic, as GNU
// tar writes its volume label (tar --label) and a V7 tar every header.
// Both sums are taken, of the bytes unsigned and signed, as readers do.
func tarChecksum(head []byte) bool {
	if len(head) < 512 {
		return false
	}
	field := strings.Trim(string(head[148:156]), " \x00")
	want, err := strconv.ParseInt(field, 8, 64)
	if field == "" || err != nil {
		return false
	}
	var unsigned, signed int64
	for i, c := range head[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || want == signed
}

// AddArchive reads a set archive (gzip or xz compressed, or plain tar; the
// format comes from its content, not its name) into t.
func (t *Tree) AddArchive(r io.Reader, name string) error {
	cr := &countReader{r: r}
	br := bufio.NewReaderSize(cr, 1<<16)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(head) == 0 {
		return fmt.Errorf("%s: empty file, not a set", name)
	}
	c, err := sniff(head)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var src io.Reader = br
	var xr *xzReader
	switch c {
	case compGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: bad gzip header: %w", name, err)
		}
		defer zr.Close()
		zr.Multistream(false)
		src = &gzipMembers{br: br, zr: zr, at: func() int64 { return cr.n - int64(br.Buffered()) }}
	case compXZ:
		xr, err = newXZReader(br)
		if err != nil {
			return fmt.Errorf("%s: bad xz header: %w", name, err)
		}
		src = xr
	}
	if c != compNone {
		// A set compressed twice (gzip -c base.tgz > dbl.tgz) decompresses
		// to another compressed stream, which the tar reader takes for no
		// archive or a truncated one.
		// Read through no buffer: one would keep an error of the
		// decompressor (a truncated xz's) where the check for it after
		// the tar end, reading past the buffer, would miss it.
		// Not io.ReadFull, which says io.ErrUnexpectedEOF both for a
		// short stream and for a truncated gzip one.
		inner := make([]byte, 512)
		n, err := 0, error(nil)
		for n < len(inner) && err == nil {
			var m int
			m, err = src.Read(inner[n:])
			n += m
		}
		if kind := innerCompression(inner[:n]); kind != "" {
			return doubleCompressedError(name, compNames[c], kind)
		}
		rest := src
		if err != nil { // the stream ended, or failed, within those bytes
			rest = errReader{err}
		}
		src = io.MultiReader(bytes.NewReader(inner[:n]), rest)
	}
	what := "the archive"
	if c != compNone {
		what = "the decompressed archive"
	}
	if err := t.addTar(src, name, what); err != nil {
		if xr != nil && xr.refused != nil { // not a corrupt archive
			return fmt.Errorf("%s: %w", name, xr.refused)
		}
		var fh *firstHeaderError
		if c != compNone && errors.As(err, &fh) {
			return fmt.Errorf("%s: decompresses (%s) to something that is not a tar archive, a compressed kernel perhaps: a set must be a .tgz, .tar.xz, .tar or a directory (%w)", name, compNames[c], fh.err)
		}
		return err
	}
	// Read the compressed stream to its end so its checksum and index are
	// verified: a tar can end cleanly inside a truncated xz or gzip file.
	if _, err := io.Copy(io.Discard, src); err != nil {
		if xr != nil && xr.refused != nil {
			return fmt.Errorf("%s: %w", name, xr.refused)
		}
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, errXZCheck) {
			// The check covers the whole stream, the files read too.
			return fmt.Errorf("%s: the compressed data fails its checksum: the set is damaged, and the files read from it may be corrupt: %w", name, err)
		}
		return fmt.Errorf("%s: corrupt or truncated compressed stream after the tar end: %w", name, err)
	}
	return nil
}

// innerCompression names the compression whose magic head, the start of
// a decompressed set, begins with ("gzip", "xz", "bzip2" or "zstd"), or
// is "" when head starts a tar header or no such stream.
func innerCompression(head []byte) string {
	if len(head) >= 262 && string(head[257:262]) == "ustar" || tarChecksum(head) {
		return ""
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "xz"
	case len(head) >= 4 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9':
		return "bzip2"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return ""
}

// doubleCompressedError says that the set name, decompressed (outer),
// holds data compressed again (inner) rather than a tar archive.
func doubleCompressedError(name, outer, inner string) error {
	const head = "%s: decompresses (%s) to %s data, not a tar archive: the file is compressed twice"
	switch inner {
	case "gzip":
		return fmt.Errorf(head+"; decompress it once and give the .tgz it holds", name, outer, inner)
	case "xz":
		return fmt.Errorf(head+"; decompress it once and give the .tar.xz it holds", name, outer, inner)
	}
	return fmt.Errorf(head+", and %s compression is not supported: decompress both and give the .tar, or recompress it as .tgz or .tar.xz", name, outer, inner, inner)
}

// errReader is a reader whose every read fails with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// gzipMembers reads the members of a gzip file one after the other, as
// gzip does, and then accepts only zero bytes to the end: the padding a
// file written in tape blocks gets, which gzip -t accepts too. An error
// in a member after the first names the byte it starts at.
type gzipMembers struct {
	br    *bufio.Reader
	zr    *gzip.Reader // in single-member mode, stopping at each member's end
	at    func() int64 // the offset in the file br reads next
	start int64        // the offset of the member zr reads
	err   error        // io.EOF after the padding, or what ended the read
}

// Read returns a member's data and then, on every later call, the error
// that ended the read: a reader that got the bytes it wanted with an
// error (io.ReadFull) drops that error, so it must come again.
func (g *gzipMembers) Read(p []byte) (int, error) {
	for g.err == nil {
		n, err := g.zr.Read(p)
		if err != io.EOF {
			if err != nil && g.start > 0 {
				err = fmt.Errorf("gzip member at byte %d: %w", g.start, err)
			}
			return n, err
		}
		g.err = g.next()
		if n > 0 {
			return n, nil
		}
	}
	return 0, g.err
}

// next starts the member that follows the one just read (nil), or reads
// the zero padding to the end of the file (io.EOF).
func (g *gzipMembers) next() error {
	if head, _ := g.br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		g.start = g.at()
		if err := g.zr.Reset(g.br); err != nil {
			return fmt.Errorf("gzip member at byte %d: %w", g.start, err)
		}
		g.zr.Multistream(false)
		return nil
	}
	for {
		at := g.at()
		b, err := g.br.ReadByte()
		if err != nil {
			return err
		}
		if b != 0 {
			return fmt.Errorf("byte %d, after the last gzip member, is %#02x: only zero bytes (padding) may follow it", at, b)
		}
	}
}
