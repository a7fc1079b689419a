package fstree

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os/exec"
	"runtime"
	"testing"
)

// xzRawBlock is a block of xzFile: its LZMA2 data (chunks and end marker),
// the data they decode to, and the compressed and uncompressed sizes its
// header gives (-1 for none).
type xzRawBlock struct {
	lz, data   []byte
	comp, size int64
}

// xzFile is an xz file (CRC32 checks, 8 MiB dictionaries) of the given
// blocks.
func xzFile(blocks ...xzRawBlock) []byte {
	le := binary.LittleEndian
	varint := func(b []byte, v uint64) []byte {
		for ; v >= 0x80; v >>= 7 {
			b = append(b, byte(v)|0x80)
		}
		return append(b, byte(v))
	}
	f := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 1}
	f = le.AppendUint32(f, crc32.ChecksumIEEE([]byte{0, 1}))
	index := []byte{0}
	index = varint(index, uint64(len(blocks)))
	for _, b := range blocks {
		h := []byte{0, 0}
		if b.comp >= 0 {
			h[1] |= 0x40
			h = varint(h, uint64(b.comp))
		}
		if b.size >= 0 {
			h[1] |= 0x80
			h = varint(h, uint64(b.size))
		}
		h = append(h, 0x21, 1, 22)
		for len(h)%4 != 0 {
			h = append(h, 0)
		}
		h[0] = byte(len(h) / 4)
		h = le.AppendUint32(h, crc32.ChecksumIEEE(h))
		f = append(f, h...)
		f = append(f, b.lz...)
		f = append(f, make([]byte, (4-len(b.lz)%4)%4)...)
		f = le.AppendUint32(f, crc32.ChecksumIEEE(b.data))
		index = varint(varint(index, uint64(len(h)+len(b.lz)+4)), uint64(len(b.data)))
	}
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = le.AppendUint32(index, crc32.ChecksumIEEE(index))
	f = append(f, index...)
	foot := le.AppendUint32(nil, uint32(len(index)/4-1))
	foot = append(foot, 0, 1)
	f = le.AppendUint32(f, crc32.ChecksumIEEE(foot))
	f = append(f, foot...)
	return append(f, 'Y', 'Z')
}

// lzmaChunk is an LZMA2 chunk with control byte ctl (0xc0 or above: with
// properties props) holding 100 'A's, lc 3, lp 0, pb 2 as xz made it: a
// literal, then a match; which decodes alike whatever lc and lp are.
func lzmaChunk(ctl, props byte) []byte {
	body := []byte{0x00, 0x20, 0xee, 0x9e, 0x00, 0x00, 0x00}
	c := []byte{ctl, 0x00, 0x63, 0x00, byte(len(body) - 1)}
	if ctl >= 0xc0 {
		c = append(c, props)
	}
	return append(c, body...)
}

// xzLZ is LZMA2 data of the given chunks and an end marker.
func xzLZ(chunks ...[]byte) []byte {
	return append(bytes.Join(chunks, nil), 0)
}

// TestXZChunks: LZMA2 chunk headers and block sizes that xz calls corrupt.
// A chunk's properties with lc+lp above 4 (or pb above 4, a byte above
// 224), which LZMA2 does not allow, were read: the decoder builds a table
// of 0x300<<(lc+lp) probabilities for each such chunk, 6 MiB and some 4 ms
// for a 13-byte chunk of lc 8, lp 4 (a 26 KB file allocated 12 GB). They
// are refused, naming the chunk. A chunk whose data ends before the bytes
// its header gives was "xz block 1: unexpected EOF" at the block's header;
// the error names the chunk, at its header. A block whose header gives
// one of its sizes, which the block does not hold, gave the other as -1;
// only the sizes the header gives are told.
func TestXZChunks(t *testing.T) {
	a100 := bytes.Repeat([]byte{'A'}, 100)
	a200 := bytes.Repeat([]byte{'A'}, 200)
	lie := lzmaChunk(0xe0, 0x5d)
	lie[1]++ // 356 bytes, not 100
	for _, tc := range []struct {
		name string
		file []byte
		want string // the error; "" to read
	}{
		{"lc 3, lp 0, pb 2", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d), lzmaChunk(0xc0, 0x5d)), a200, -1, -1}), ""},
		{"lc 8, lp 4 in the second chunk", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d), lzmaChunk(0xc0, (2*5+4)*9+8)), a200, -1, -1}),
			"at byte 42 of the compressed file: xz block 1: LZMA2 chunk 2 properties byte 0x86 (lc 8, lp 4, pb 2): LZMA2 allows lc+lp up to 4 and pb up to 4: the data is corrupt"},
		{"lc 4, lp 1 in the first chunk", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 1*9+4)), a100, -1, -1}),
			"at byte 29 of the compressed file: xz block 1: LZMA2 chunk 1 properties byte 0x0d (lc 4, lp 1, pb 0): LZMA2 allows lc+lp up to 4 and pb up to 4: the data is corrupt"},
		{"pb 5", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 225)), a100, -1, -1}),
			"at byte 29 of the compressed file: xz block 1: LZMA2 chunk 1 properties byte 0xe1 (lc 0, lp 0, pb 5): LZMA2 allows lc+lp up to 4 and pb up to 4: the data is corrupt"},
		{"a byte above 224 in the second block", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d)), a100, -1, -1}, xzRawBlock{xzLZ(lzmaChunk(0xe0, 0xff)), a100, -1, -1}),
			"at byte 61 of the compressed file: xz block 2: LZMA2 chunk 1 properties byte 0xff (lc 3, lp 3, pb 5): LZMA2 allows lc+lp up to 4 and pb up to 4: the data is corrupt"},
		{"a chunk shorter than its header gives", xzFile(xzRawBlock{xzLZ(lie, lzmaChunk(0xc0, 0x5d)), a100, -1, -1}),
			"at byte 24 of the compressed file: xz block 1: LZMA2 chunk 1: its 7 compressed bytes end before the 356 bytes its header gives are decompressed: the data is corrupt"},
		{"a second chunk shorter than its header gives", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d), lie), a100, -1, -1}),
			"at byte 37 of the compressed file: xz block 1: LZMA2 chunk 2: its 7 compressed bytes end before the 356 bytes its header gives are decompressed: the data is corrupt"},
		{"sizes given", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d)), a100, 14, 100}), ""},
		{"uncompressed size given, wrong", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d)), a100, -1, 1 << 62}),
			"at byte 12 of the compressed file: xz block 1 holds 100 decompressed bytes, not the 4611686018427387904 its header declares"},
		{"compressed size given, wrong", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d)), a100, 15, -1}),
			"at byte 12 of the compressed file: xz block 1 holds 14 compressed bytes, not the 15 its header declares"},
		{"both sizes given, one wrong", xzFile(xzRawBlock{xzLZ(lzmaChunk(0xe0, 0x5d)), a100, 15, 100}),
			"at byte 12 of the compressed file: xz block 1 holds 14 compressed bytes and 100 decompressed, not the 15 and 100 its header declares"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := newXZReader(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			got, err = io.ReadAll(x)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, bytes.Repeat([]byte{'A'}, len(got))) || len(got) == 0 {
					t.Errorf("read %q", got)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("read %d bytes, then %v\nwant %s", len(got), err, tc.want)
			}
		})
	}
}

// TestXZChunkPropsCost: 1000 chunks of lc 8, lp 4 allocated 6 GB before
// they were refused; now the first is, having allocated next to nothing.
func TestXZChunkPropsCost(t *testing.T) {
	chunks := [][]byte{lzmaChunk(0xe0, 0x5d)}
	for range 1000 {
		chunks = append(chunks, lzmaChunk(0xc0, (2*5+4)*9+8))
	}
	f := xzFile(xzRawBlock{xzLZ(chunks...), bytes.Repeat([]byte{'A'}, 100*len(chunks)), -1, -1})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	x, err := newXZReader(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, x)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Error("read")
	}
	// The 8 MiB dictionary and the decoder's buffers.
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("allocated %d MiB", got>>20)
	}
}

// TestXZChunkPropsMadeByXZ: the properties at LZMA2's limits, which xz
// makes, read.
func TestXZChunkPropsMadeByXZ(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz here")
	}
	var data bytes.Buffer
	for i := 0; data.Len() < 200<<10; i++ {
		data.WriteString("a line of text, and another, for LZMA's contexts\n"[i%40:])
	}
	for _, lzma2 := range []string{"preset=6,lc=4,lp=0,pb=4", "preset=1,lc=0,lp=4,pb=0", "preset=1,lc=2,lp=2,pb=3"} {
		t.Run(lzma2, func(t *testing.T) {
			cmd := exec.Command("xz", "-c", "--lzma2="+lzma2)
			cmd.Stdin = bytes.NewReader(data.Bytes())
			f, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			x, err := newXZReader(bytes.NewReader(f))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(x)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data.Bytes()) {
				t.Error("read other data")
			}
		})
	}
}
