package fstree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// XZDictCap is the largest LZMA2 dictionary a set's xz blocks may declare:
// xz -9's (and -9e's), the largest of its presets, 64 MiB. The decoder
// allocates a block's dictionary whole before reading its data, and a
// block may declare up to 4 GiB.
const XZDictCap = 64 << 20

// xzLZMA2 is the id of the xz filter the decoder reads.
const xzLZMA2 = 0x21

// xzFilterNames names the xz filters (by id) that may precede LZMA2.
var xzFilterNames = map[uint64]string{
	0x03: "delta", 0x04: "x86 BCJ", 0x05: "PowerPC BCJ", 0x06: "IA-64 BCJ",
	0x07: "ARM BCJ", 0x08: "ARM-Thumb BCJ", 0x09: "SPARC BCJ", 0x0a: "ARM64 BCJ", 0x0b: "RISC-V BCJ",
}

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// xzReader decompresses an xz file (one or more streams, with stream
// padding between them) whose blocks hold LZMA2 data alone, checking each
// block's header before its dictionary is allocated: github.com/ulikunitz/xz
// allocates whatever a block declares. Its LZMA2 decoder does the rest.
//
// The decoder allocates its dictionary whole (zeroing 64 MiB takes some
// 10 ms) and cannot be given another, so one decoder reads every block,
// fed the blocks' LZMA2 chunks as one sequence: each block's first chunk
// resets the dictionary, as a new decoder's must, and the end marker
// between blocks is kept from it. A new decoder, with a dictionary at
// least twice the last, is made only for a block that needs more, so a
// file of tiny blocks each declaring 64 MiB allocates it once. As the
// dictionary only grows, a block whose matches reach back past its own
// declared dictionary (which xz calls corrupt) is read when an earlier
// block made the dictionary large enough; its integrity check still holds.
//
// Valid but hostile chunks cost time and garbage, not memory: 1-byte
// stored chunks, or LZMA chunks each resetting the properties or the
// state, take some 1-3 s and 1-1.3 GiB of allocation (under 100 MiB at a
// time) per MiB of input, as the decoder copies each stored chunk through
// a new 32 KiB buffer and rebuilds its tables at each reset.
type xzReader struct {
	in      *countReader
	check   byte        // the current stream's check type
	flags   []byte      // the current stream's flags, which its footer repeats
	blocks  int         // blocks begun, over all streams
	records [][2]uint64 // the current stream's blocks, as its index lists them: unpadded and uncompressed sizes
	block   *xzBlock    // nil between blocks
	lz      *lzma.Reader2
	dictCap int64 // lz's dictionary
	chunks  xzChunks
	left    int64 // bytes of the current chunk lz has not returned
	err     error // what ended the reading
	refused error // err, when the file is sound but holds what a set may not
}

// xzChunks is what the LZMA2 decoder reads: the chunk header the xz reader
// read, then the chunk's data, and nothing beyond.
type xzChunks struct {
	in     io.Reader
	header []byte
	at     int64 // the offset of the chunk's header
	out    int64 // the bytes the chunk decompresses to, as its header gives them
	size   int64 // the chunk's compressed bytes
	data   int64 // of them, those not yet read
}

// Read reads the header, then the data, then fails: a decoder reading
// past its chunk would read the next chunk's header, which is the xz
// reader's to read.
func (c *xzChunks) Read(p []byte) (int, error) {
	if len(c.header) > 0 {
		n := copy(p, c.header)
		c.header = c.header[n:]
		return n, nil
	}
	if c.data == 0 {
		return 0, errors.New("LZMA2 decoder reads past its chunk")
	}
	n, err := c.in.Read(p[:min(int64(len(p)), c.data)])
	c.data -= int64(n)
	return n, err
}

// xzBlock is the block being read.
type xzBlock struct {
	n, at          int64 // its number from 1, and the offset of its header
	headerLen      int64
	dataAt         int64 // the offset of its compressed data
	compSize, size int64 // as its header declares them, or -1
	out            int64 // bytes decompressed
	dict           int64 // the dictionary it needs
	chunks         int   // its LZMA2 chunks begun
	hash           hash.Hash
}

// errXZCheck is wrapped by the error of a block whose integrity check
// (CRC-32, CRC-64 or SHA-256 of its data) does not match the data.
var errXZCheck = errors.New("integrity check mismatch: the data is corrupt")

// xzError is an error of the xz file at byte at (format starts "xz ...").
func xzError(at int64, format string, args ...any) error {
	return fmt.Errorf("at byte %d of the compressed file: "+format, append([]any{at}, args...)...)
}

// newXZReader reads the first stream header of r.
func newXZReader(r io.Reader) (*xzReader, error) {
	x := &xzReader{in: &countReader{r: r}}
	x.chunks.in = x.in
	if err := x.streamHeader(nil); err != nil {
		return nil, err
	}
	return x, nil
}

// streamHeader reads a stream header, of which head is read already.
func (x *xzReader) streamHeader(head []byte) error {
	at := x.in.n - int64(len(head))
	h := make([]byte, 12)
	copy(h, head)
	if _, err := io.ReadFull(x.in, h[len(head):]); err != nil {
		return xzError(at, "xz stream header: %w", unexpected(err))
	}
	if !bytes.Equal(h[:6], xzMagic) {
		return xzError(at, "no xz stream header (magic % x)", h[:6])
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return xzError(at+8, "xz stream header CRC32 mismatch")
	}
	if h[6] != 0 || h[7]&0xf0 != 0 {
		return xzError(at+6, "xz stream flags %#02x %#02x: not an xz format this decoder knows", h[6], h[7])
	}
	x.flags, x.check = h[6:8], h[7]
	if x.newHash() == nil && x.check != 0 {
		x.refused = xzError(at+7, "xz integrity check type %#x is not supported (CRC32, CRC64, SHA-256 or none are): recompress the set with plain xz", x.check)
		return x.refused
	}
	x.records = x.records[:0]
	return nil
}

// newHash is the hash of the stream's check, nil for none.
func (x *xzReader) newHash() hash.Hash {
	switch x.check {
	case 1:
		return crc32.NewIEEE()
	case 4:
		return crc64.New(crc64.MakeTable(crc64.ECMA))
	case 10:
		return sha256.New()
	}
	return nil
}

// checkSize is the size of the stream's check.
func (x *xzReader) checkSize() int64 {
	switch x.check {
	case 0:
		return 0
	case 1:
		return 4
	case 4:
		return 8
	}
	return 32
}

// Read decompresses the blocks one after the other; io.EOF after the
// last stream and its padding.
func (x *xzReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // the decoder would return nothing forever
	}
	for x.err == nil {
		if x.block == nil {
			x.err = x.next()
			continue
		}
		if x.left == 0 {
			x.err = x.chunk()
			continue
		}
		// Asked for no more than the chunk holds, the decoder does not
		// read the next chunk's header, which the xz reader reads first.
		n, err := x.lz.Read(p[:min(int64(len(p)), x.left)])
		x.left -= int64(n)
		x.block.out += int64(n)
		if x.block.hash != nil {
			x.block.hash.Write(p[:n])
		}
		b := x.block
		switch {
		case b.size >= 0 && b.out > b.size:
			err = xzError(b.at, "xz block %d holds more than the %d bytes its header declares", b.n, b.size)
		case err != nil && x.chunks.data == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
			c := &x.chunks
			err = xzError(c.at, "xz block %d: LZMA2 chunk %d: its %d compressed bytes end before the %d bytes its header gives are decompressed: the data is corrupt", b.n, b.chunks, c.size, c.out)
		case err != nil:
			err = xzError(x.chunks.at, "xz block %d: LZMA2 chunk %d: %w", b.n, b.chunks, unexpected(err))
		}
		x.err = err
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, x.err
}

// unexpected is err, io.ErrUnexpectedEOF for io.EOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next reads what follows a block: the next block's header, or the index,
// the stream footer and what follows the stream (io.EOF at the file's end).
func (x *xzReader) next() error {
	at := x.in.n
	var size [1]byte
	if _, err := io.ReadFull(x.in, size[:]); err != nil {
		return xzError(at, "xz block header or index: %w", unexpected(err))
	}
	if size[0] == 0 {
		if err := x.index(at); err != nil {
			return err
		}
		return x.afterStream()
	}
	h := make([]byte, (int(size[0])+1)*4)
	h[0] = size[0]
	if _, err := io.ReadFull(x.in, h[1:]); err != nil {
		return xzError(at, "xz block header: %w", unexpected(err))
	}
	x.blocks++
	b := &xzBlock{n: int64(x.blocks), at: at, headerLen: int64(len(h)), dataAt: x.in.n, hash: x.newHash()}
	dict, err := b.parseHeader(h)
	if err != nil {
		var r *xzRefusal
		if errors.As(err, &r) {
			x.refused = err
		}
		return err
	}
	// A block never reaches back further than its own data.
	b.dict = dict
	if b.size >= 0 {
		b.dict = min(b.dict, b.size)
	}
	b.dict = max(b.dict, lzma.MinDictCap)
	x.block = b
	return nil
}

// chunk reads the header of the block's next LZMA2 chunk, making the
// decoder for the block's first chunk if the last has too small a
// dictionary, or reads the block's end.
func (x *xzReader) chunk() error {
	b := x.block
	at := x.in.n
	if x.chunks.data != 0 {
		return xzError(at, "xz block %d: LZMA2 chunk %d: its data ends after %d of the %d compressed bytes its header gives: the data is corrupt", b.n, b.chunks, x.chunks.size-x.chunks.data, x.chunks.size)
	}
	h := make([]byte, 1, 6)
	if _, err := io.ReadFull(x.in, h); err != nil {
		return xzError(at, "xz block %d: LZMA2 chunk header: %w", b.n, unexpected(err))
	}
	ctl := h[0]
	if ctl == 0 {
		return x.endBlock()
	}
	b.chunks++
	switch {
	case ctl >= 0xc0:
		h = h[:6] // with properties
	case ctl >= 0x80:
		h = h[:5]
	case ctl <= 2:
		h = h[:3]
	default:
		return xzError(at, "xz block %d: LZMA2 chunk %d control byte %#02x: no such chunk type", b.n, b.chunks, ctl)
	}
	if b.chunks == 1 && ctl != 1 && ctl < 0xe0 {
		return xzError(at, "xz block %d: its first LZMA2 chunk (control byte %#02x) does not reset the dictionary", b.n, ctl)
	}
	if _, err := io.ReadFull(x.in, h[1:]); err != nil {
		return xzError(at, "xz block %d: LZMA2 chunk %d header: %w", b.n, b.chunks, unexpected(err))
	}
	if ctl >= 0xc0 {
		// The decoder takes lc up to 8 and lp up to 4, building a table
		// of 0x300<<(lc+lp) probabilities (6 MiB) for each such chunk.
		if p := h[5]; p > 224 || p%9+p/9%5 > 4 {
			return xzError(at+5, "xz block %d: LZMA2 chunk %d properties byte %#02x (lc %d, lp %d, pb %d): LZMA2 allows lc+lp up to 4 and pb up to 4: the data is corrupt", b.n, b.chunks, p, p%9, p/9%5, p/45)
		}
	}
	x.left = int64(binary.BigEndian.Uint16(h[1:])) + 1
	x.chunks.data = x.left
	if ctl >= 0x80 {
		x.left += int64(ctl&0x1f) << 16
		x.chunks.data = int64(binary.BigEndian.Uint16(h[3:])) + 1
	}
	x.chunks.header, x.chunks.size = h, x.chunks.data
	x.chunks.at, x.chunks.out = at, x.left
	if b.chunks == 1 && b.dict > x.dictCap {
		c := max(b.dict, min(2*x.dictCap, XZDictCap))
		x.lz = nil // not to hold both dictionaries
		lz, err := (lzma.Reader2Config{DictCap: int(c)}).NewReader2(&x.chunks)
		if err != nil {
			return xzError(at, "xz block %d: %w", b.n, err)
		}
		x.lz, x.dictCap = lz, c
	}
	return nil
}

// xzRefusal is an error for an xz file that is sound but that a set may
// not be.
type xzRefusal struct{ err error }

func (e *xzRefusal) Error() string { return e.err.Error() }
func (e *xzRefusal) Unwrap() error { return e.err }

// parseHeader reads the block header h (its size byte first) into b and
// returns the dictionary size it declares.
func (b *xzBlock) parseHeader(h []byte) (int64, error) {
	end := len(h) - 4
	if crc32.ChecksumIEEE(h[:end]) != binary.LittleEndian.Uint32(h[end:]) {
		return 0, xzError(b.at, "xz block %d header CRC32 mismatch", b.n)
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return 0, xzError(b.at+1, "xz block %d header flags %#02x: reserved bits set", b.n, flags)
	}
	rest := h[2:end]
	field := func(what string) (uint64, error) {
		v, n := xzVarint(rest)
		if n == 0 {
			return 0, xzError(b.at+int64(len(h)-4-len(rest)), "xz block %d header: bad %s", b.n, what)
		}
		rest = rest[n:]
		return v, nil
	}
	b.compSize, b.size = -1, -1
	if flags&0x40 != 0 {
		v, err := field("compressed size")
		if err != nil {
			return 0, err
		}
		if v == 0 || v > 1<<62 {
			return 0, xzError(b.at, "xz block %d header: compressed size %d", b.n, v)
		}
		b.compSize = int64(v)
	}
	if flags&0x80 != 0 {
		v, err := field("uncompressed size")
		if err != nil {
			return 0, err
		}
		if v > 1<<62 {
			return 0, xzError(b.at, "xz block %d header: uncompressed size %d", b.n, v)
		}
		b.size = int64(v)
	}
	count := int(flags&3) + 1
	var firstID uint64
	var props []byte
	for i := range count {
		id, err := field("filter id")
		if err != nil {
			return 0, err
		}
		n, err := field("filter properties size")
		if err != nil {
			return 0, err
		}
		if n > uint64(len(rest)) {
			return 0, xzError(b.at, "xz block %d header: filter properties past its end", b.n)
		}
		if i == 0 {
			firstID, props = id, rest[:n]
		}
		rest = rest[n:]
	}
	if count != 1 || firstID != xzLZMA2 {
		what := fmt.Sprintf("filter id %#x", firstID)
		if name, ok := xzFilterNames[firstID]; ok {
			what = "the " + name + " filter"
		}
		chain := "alone"
		if count > 1 {
			chain = fmt.Sprintf("a chain of %d filters", count)
		}
		return 0, &xzRefusal{fmt.Errorf("the xz compression uses %s (%s): only LZMA2 alone is supported; recompress the set with plain xz, without filter options (block %d, at byte %d)", what, chain, b.n, b.at)}
	}
	if !IsZero(rest) {
		return 0, xzError(b.at, "xz block %d header: padding not zero", b.n)
	}
	if len(props) != 1 || props[0] > 40 {
		return 0, xzError(b.at, "xz block %d header: bad LZMA2 properties % x", b.n, props)
	}
	dict := int64(0xFFFFFFFF)
	if d := props[0]; d < 40 {
		dict = int64(2|d&1) << (d/2 + 11)
	}
	if dict > XZDictCap {
		return 0, &xzRefusal{fmt.Errorf("xz block %d (at byte %d) declares a %d-byte LZMA2 dictionary, more than the %d bytes (64 MiB, xz -9's) a set's xz blocks may declare, as the decoder allocates it whole: recompress the set with xz -9 or a lower preset", b.n, b.at, dict, XZDictCap)}
	}
	return dict, nil
}

// xzVarint reads an xz multibyte integer (7 bits a byte, low first, at
// most 9 bytes, no needless zero byte): its value and length, 0 if bad.
func xzVarint(p []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(p) && i < 9; i++ {
		v |= uint64(p[i]&0x7f) << (7 * i)
		if p[i]&0x80 == 0 {
			if i > 0 && p[i] == 0 {
				return 0, 0
			}
			return v, i + 1
		}
	}
	return 0, 0
}

// endBlock reads the block's padding and check once its data ended.
func (x *xzReader) endBlock() error {
	b := x.block
	comp := x.in.n - b.dataAt
	if b.compSize >= 0 && comp != b.compSize || b.size >= 0 && b.out != b.size {
		switch {
		case b.size < 0:
			return xzError(b.at, "xz block %d holds %d compressed bytes, not the %d its header declares", b.n, comp, b.compSize)
		case b.compSize < 0:
			return xzError(b.at, "xz block %d holds %d decompressed bytes, not the %d its header declares", b.n, b.out, b.size)
		}
		return xzError(b.at, "xz block %d holds %d compressed bytes and %d decompressed, not the %d and %d its header declares", b.n, comp, b.out, b.compSize, b.size)
	}
	tail := make([]byte, (4-comp%4)%4+x.checkSize())
	at := x.in.n
	if _, err := io.ReadFull(x.in, tail); err != nil {
		return xzError(at, "xz block %d padding and check: %w", b.n, unexpected(err))
	}
	pad := int((4 - comp%4) % 4)
	if !IsZero(tail[:pad]) {
		return xzError(at, "xz block %d padding not zero", b.n)
	}
	if b.hash != nil {
		var want []byte
		switch h := b.hash.(type) {
		case hash.Hash32:
			want = binary.LittleEndian.AppendUint32(nil, h.Sum32())
		case hash.Hash64:
			want = binary.LittleEndian.AppendUint64(nil, h.Sum64())
		default:
			want = h.Sum(nil)
		}
		if !bytes.Equal(tail[pad:], want) {
			return xzError(at+int64(pad), "xz block %d %w", b.n, errXZCheck)
		}
	}
	x.records = append(x.records, [2]uint64{uint64(b.headerLen + comp + x.checkSize()), uint64(b.out)})
	x.block = nil
	return nil
}

// index reads the stream's index, its indicator byte at at read already,
// and checks it lists the blocks read.
func (x *xzReader) index(at int64) error {
	crc := crc32.NewIEEE()
	crc.Write([]byte{0})
	r := io.TeeReader(x.in, crc)
	br := &byteReader{r: r}
	count, err := readXZVarint(br)
	if err != nil {
		return xzError(at, "xz index: block count: %w", err)
	}
	if count != uint64(len(x.records)) {
		return xzError(at, "xz index lists %d blocks, the stream holds %d", count, len(x.records))
	}
	for i, rec := range x.records {
		for j, what := range []string{"unpadded size", "uncompressed size"} {
			v, err := readXZVarint(br)
			if err != nil {
				return xzError(at, "xz index record %d: %s: %w", i+1, what, err)
			}
			if v != rec[j] {
				return xzError(at, "xz index record %d: %s %d, the block has %d", i+1, what, v, rec[j])
			}
		}
	}
	size := 1 + br.n
	pad := make([]byte, (4-size%4)%4)
	if _, err := io.ReadFull(r, pad); err != nil {
		return xzError(at, "xz index padding: %w", unexpected(err))
	}
	if !IsZero(pad) {
		return xzError(at, "xz index padding not zero")
	}
	size += int64(len(pad))
	sum := crc.Sum32()
	foot := make([]byte, 4+12)
	if _, err := io.ReadFull(x.in, foot); err != nil {
		return xzError(at+size, "xz index CRC32 and stream footer: %w", unexpected(err))
	}
	if binary.LittleEndian.Uint32(foot) != sum {
		return xzError(at+size, "xz index CRC32 mismatch")
	}
	f := foot[4:]
	switch {
	case crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f):
		return xzError(at+size+4, "xz stream footer CRC32 mismatch")
	case string(f[10:]) != "YZ":
		return xzError(at+size+4, "no xz stream footer")
	case !bytes.Equal(f[8:10], x.flags):
		return xzError(at+size+4, "xz stream footer flags differ from the header's")
	case (int64(binary.LittleEndian.Uint32(f[4:]))+1)*4 != size+4: // the index with its CRC32
		return xzError(at+size+4, "xz stream footer gives an index size other than %d", size+4)
	}
	return nil
}

// afterStream reads stream padding (zero bytes, four at a time) to the
// file's end (io.EOF) or the next stream's header.
func (x *xzReader) afterStream() error {
	for {
		at := x.in.n
		var w [4]byte
		n, err := io.ReadFull(x.in, w[:])
		switch {
		case n == 0 && err == io.EOF:
			return io.EOF
		case err != nil:
			return xzError(at, "%d bytes after the xz stream, not a multiple of 4 zero bytes nor another stream", n)
		case w == [4]byte{}:
			continue
		case bytes.Equal(w[:], xzMagic[:4]):
			return x.streamHeader(w[:])
		}
		return xzError(at, "data after the xz stream (% x), neither zero padding nor another stream", w)
	}
}

// byteReader reads single bytes from r, counting them.
type byteReader struct {
	r io.Reader
	n int64
}

func (b *byteReader) ReadByte() (byte, error) {
	var c [1]byte
	if _, err := io.ReadFull(b.r, c[:]); err != nil {
		return 0, unexpected(err)
	}
	b.n++
	return c[0], nil
}

// readXZVarint reads an xz multibyte integer from br.
func readXZVarint(br *byteReader) (uint64, error) {
	var p []byte
	for len(p) < 9 {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		p = append(p, c)
		if c&0x80 == 0 {
			break
		}
	}
	v, n := xzVarint(p)
	if n == 0 {
		return 0, errors.New("bad multibyte integer")
	}
	return v, nil
}
