package fstree_test

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// xzBlockSpec is a block of xzBlocks: its LZMA2 dictionary (the
// properties byte: 28 for 64 MiB, 40 for 4 GiB), whether its header
// gives its sizes, and whether its first chunk keeps the dictionary
// (which xz refuses).
type xzBlockSpec struct {
	dict    byte
	sizes   bool
	noReset bool
}

// xzBlocks is data as an xz file (CRC32 checks) of the given blocks, data
// spread over them, in LZMA2 chunks stored uncompressed: a block's header
// is all that makes its dictionary.
func xzBlocks(data []byte, blocks []xzBlockSpec) []byte {
	le := binary.LittleEndian
	var f bytes.Buffer
	f.Write([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 1})
	f.Write(le.AppendUint32(nil, crc32.ChecksumIEEE([]byte{0, 1})))
	varint := func(b []byte, v uint64) []byte {
		for ; v >= 0x80; v >>= 7 {
			b = append(b, byte(v)|0x80)
		}
		return append(b, byte(v))
	}
	var records [][2]uint64
	per := (len(data) + len(blocks) - 1) / len(blocks)
	for i, spec := range blocks {
		part := data[min(i*per, len(data)):min((i+1)*per, len(data))]
		var lz []byte
		for j := 0; j < len(part); j += 1 << 16 {
			chunk := part[j:min(j+1<<16, len(part))]
			ctl := byte(2)
			if j == 0 && !spec.noReset {
				ctl = 1 // resets the dictionary
			}
			lz = append(lz, ctl, byte((len(chunk)-1)>>8), byte(len(chunk)-1))
			lz = append(lz, chunk...)
		}
		lz = append(lz, 0)
		h := []byte{0, 0}
		if spec.sizes {
			h[1] = 0xc0
			h = varint(h, uint64(len(lz)))
			h = varint(h, uint64(len(part)))
		}
		h = append(h, 0x21, 1, spec.dict)
		for (len(h)+4)%4 != 0 {
			h = append(h, 0)
		}
		h[0] = byte((len(h)+4)/4 - 1)
		h = le.AppendUint32(h, crc32.ChecksumIEEE(h))
		f.Write(h)
		f.Write(lz)
		f.Write(make([]byte, (4-len(lz)%4)%4))
		f.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(part)))
		records = append(records, [2]uint64{uint64(len(h) + len(lz) + 4), uint64(len(part))})
	}
	index := varint([]byte{0}, uint64(len(records)))
	for _, r := range records {
		index = varint(varint(index, r[0]), r[1])
	}
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = le.AppendUint32(index, crc32.ChecksumIEEE(index))
	f.Write(index)
	foot := le.AppendUint32([]byte{}, uint32(len(index)/4-1))
	foot = append(foot, 0, 1)
	f.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(foot)))
	f.Write(foot)
	f.WriteString("YZ")
	return f.Bytes()
}

// TestXZDictionary: a valid .tar.xz whose blocks declare a 4 GiB LZMA2
// dictionary made the decoder allocate it whole, for every block: "fatal
// error: out of memory", or 307 GB allocated over 2.5 minutes for 75
// blocks. A dictionary above xz -9's 64 MiB is refused, naming the block,
// before it is allocated. Blocks of 64 MiB, however many and small, are
// read with one dictionary: 10,000 of them made 640 GB of dictionaries
// (a budget refused them, and valid files xz makes); now 64 MiB. A block
// whose first chunk keeps the dictionary, which a decoder made for the
// block refused, is refused still, though the dictionary is the last
// block's.
func TestXZDictionary(t *testing.T) {
	es := testsets.Rescue(200)
	raw, err := testsets.Bytes(es, "tar")
	if err != nil {
		t.Fatal(err)
	}
	many := func(n int, spec xzBlockSpec) []xzBlockSpec {
		s := make([]xzBlockSpec, n)
		for i := range s {
			s[i] = spec
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		blocks []xzBlockSpec
		want   string // "" to read
	}{
		{"8 MiB", []xzBlockSpec{{22, false, false}}, ""},
		{"64 MiB", []xzBlockSpec{{28, false, false}}, ""},
		{"4 GiB", []xzBlockSpec{{40, false, false}}, "set.txz: xz block 1 (at byte 12) declares a 4294967295-byte LZMA2 dictionary, more than the 67108864 bytes (64 MiB, xz -9's) a set's xz blocks may declare, as the decoder allocates it whole: recompress the set with xz -9 or a lower preset"},
		{"96 MiB, sizes given", []xzBlockSpec{{29, true, false}}, "set.txz: xz block 1 (at byte 12) declares a 100663296-byte LZMA2 dictionary"},
		{"4 GiB in the third block", []xzBlockSpec{{22, false, false}, {22, true, false}, {40, false, false}}, "set.txz: xz block 3 (at byte "},
		{"4 GiB in every block", many(75, xzBlockSpec{40, false, false}), "set.txz: xz block 1 (at byte 12) declares a 4294967295-byte"},
		{"many small blocks of 64 MiB", many(100, xzBlockSpec{28, false, false}), ""},
		{"10000 tiny blocks of 64 MiB", many(10000, xzBlockSpec{28, false, false}), ""},
		{"many small blocks of 64 MiB, sizes given", many(100, xzBlockSpec{28, true, false}), ""},
		{"many small blocks of 4 KiB", many(100, xzBlockSpec{0, false, false}), ""},
		{"4 KiB, then 64 MiB, then 8 MiB", []xzBlockSpec{{0, false, false}, {28, false, false}, {22, false, false}}, ""},
		{"first chunk keeps the dictionary", []xzBlockSpec{{22, false, true}}, "set.txz: entry 1: corrupt or truncated archive at byte 0 of the decompressed archive: at byte 24 of the compressed file: xz block 1: its first LZMA2 chunk (control byte 0x02) does not reset the dictionary"},
		{"second block's first chunk keeps the dictionary", []xzBlockSpec{{22, false, false}, {22, false, true}}, "set.txz: entry 81: corrupt or truncated archive at byte 41728 of the decompressed archive: at byte 41772 of the compressed file: xz block 2: its first LZMA2 chunk (control byte 0x02) does not reset the dictionary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			txz := xzBlocks(raw, tc.blocks)
			if _, err := exec.LookPath("xz"); err == nil && tc.want == "" {
				cmd := exec.Command("xz", "-t")
				cmd.Stdin = bytes.NewReader(txz)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("xz -t: %v: %s", err, out)
				}
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			tr := fstree.New()
			err := tr.AddArchive(bytes.NewReader(txz), "set.txz")
			runtime.ReadMemStats(&after)
			// The decoder copies each stored chunk through a new 32 KiB buffer.
			if got := after.TotalAlloc - before.TotalAlloc; got > 256<<20+40<<10*uint64(len(tc.blocks)) {
				t.Errorf("reading the set allocated %d MiB", got>>20)
			}
			wantRead(t, tr, err, es, tc.want)
		})
	}
}

// wantRead checks AddArchive's err against want: with want empty, the
// set was read, its last entry es's last; else err begins with want.
func wantRead(t *testing.T, tr *fstree.Tree, err error, es []testsets.Entry, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Get(strings.TrimPrefix(es[len(es)-1].Hdr.Name, "./")); err != nil {
			t.Error(err)
		}
		return
	}
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("AddArchive = %v, want %q", err, want)
	}
}

// TestXZForms: the xz files the xz command makes read: each check, blocks
// with and without their sizes, concatenated streams with padding between
// them; a corrupt block is refused.
func TestXZForms(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz here")
	}
	es := testsets.Rescue(1000)
	raw, err := testsets.Bytes(es, "tar")
	if err != nil {
		t.Fatal(err)
	}
	xz := func(data []byte, args ...string) []byte {
		cmd := exec.Command("xz", append([]string{"-c"}, args...)...)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	half := len(raw) / 2
	corrupt := xz(raw, "-0")
	corrupt[len(corrupt)/2] ^= 0x40
	for _, tc := range []struct {
		name string
		data []byte
		want string // in the error; "" to read
	}{
		{"crc32", xz(raw, "--check=crc32"), ""},
		{"sha256", xz(raw, "--check=sha256"), ""},
		{"no check", xz(raw, "--check=none"), ""},
		{"blocks without sizes", xz(raw, "-T1", "--block-size=4KiB", "-0"), ""},
		{"blocks with sizes", xz(raw, "-T2", "--block-size=4KiB"), ""},
		{"-9", xz(raw, "-9"), ""},
		{"two streams, padding between", append(append(xz(raw[:half]), 0, 0, 0, 0), xz(raw[half:])...), ""},
		{"padding after", append(xz(raw), 0, 0, 0, 0, 0, 0, 0, 0), ""},
		{"padding not of four", append(xz(raw), 0, 0), "set.txz: "},
		{"corrupt", corrupt, "set.txz: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			err := tr.AddArchive(bytes.NewReader(tc.data), "set.txz")
			wantRead(t, tr, err, es, tc.want)
		})
	}
}

// TestXZMadeByXZ: the files xz makes read, whatever their blocks'
// dictionaries and sizes. A budget on the dictionaries allocated, one per
// block, refused two concatenated xz -9 streams, the first small, and
// xz -T1 -9 --block-size=256KiB, whose block headers give no sizes. As
// the xz reader hands the decoder one chunk at a time, a compressed
// chunk whose header gives more data than it decodes from is refused.
func TestXZMadeByXZ(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz here to make the files")
	}
	var text bytes.Buffer
	for i := 0; text.Len() < 1<<20; i++ {
		fmt.Fprintf(&text, "line %d of a manual page, as a set holds many\n", i*i%9973)
	}
	es := append(testsets.Rescue(256<<10),
		testsets.Entry{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./usr/share/man/cat1/x.0", Mode: 0444, Size: int64(text.Len())}, Data: text.Bytes()},
		testsets.Entry{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./var/zeros", Mode: 0444, Size: 256 << 10}, Data: make([]byte, 256<<10)})
	raw, err := testsets.Bytes(es, "tar")
	if err != nil {
		t.Fatal(err)
	}
	xz := func(data []byte, args ...string) []byte {
		cmd := exec.Command("xz", append([]string{"-c", "--memlimit-compress=1GiB"}, args...)...)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz %v: %v", args, err)
		}
		return out
	}
	cat := func(files ...[]byte) []byte { return bytes.Join(files, nil) }
	// longChunk adds a byte to the data of the first compressed LZMA2
	// chunk of f's first block, and to the compressed size its header
	// gives; and returns the error that makes.
	longChunk := func(f []byte) ([]byte, string) {
		for i, k := 12+(int(f[12])+1)*4, 1; f[i] != 0; k++ {
			ctl := f[i]
			if ctl < 0x80 {
				i += 3 + int(binary.BigEndian.Uint16(f[i+1:])) + 1
				continue
			}
			n := int(binary.BigEndian.Uint16(f[i+3:])) + 1
			hl := 5
			if ctl >= 0xc0 {
				hl = 6
			}
			if n < 1<<16 {
				g := cat(f[:i+hl+n], []byte{0x55}, f[i+hl+n:])
				binary.BigEndian.PutUint16(g[i+3:], uint16(n))
				return g, fmt.Sprintf(": xz block 1: LZMA2 chunk %d: its data ends after %d of the %d compressed bytes its header gives: the data is corrupt", k, n, n+1)
			}
			i += hl + n
		}
		t.Fatal("no compressed chunk to lengthen")
		return nil, ""
	}
	long, longErr := longChunk(xz(raw, "-6"))
	for _, tc := range []struct {
		name string
		data func() []byte
		want string // in the error; "" to read
	}{
		{"two -9 streams, the first of 10 KiB", func() []byte { return cat(xz(raw[:10<<10], "-9"), xz(raw[10<<10:], "-9")) }, ""},
		{"five -9 streams", func() []byte {
			var s [][]byte
			for i := range 5 {
				s = append(s, xz(raw[i*len(raw)/5:(i+1)*len(raw)/5], "-9"))
			}
			return cat(s...)
		}, ""},
		{"-9 -T1 --block-size=256KiB", func() []byte { return xz(raw, "-9", "-T1", "--block-size=256KiB") }, ""},
		{"-9 -T2 --block-size=64KiB", func() []byte { return xz(raw, "-9", "-T2", "--block-size=64KiB") }, ""},
		{"-9 -T0", func() []byte { return xz(raw, "-9", "-T0") }, ""},
		{"-0 -T1 --block-size=64KiB", func() []byte { return xz(raw, "-0", "-T1", "--block-size=64KiB") }, ""},
		{"-6 -T1 --block-size=64KiB", func() []byte { return xz(raw, "-6", "-T1", "--block-size=64KiB") }, ""},
		{"-9e -T1 --block-size=64KiB", func() []byte { return xz(raw, "-9e", "-T1", "--block-size=64KiB") }, ""},
		{"a chunk longer than its data", func() []byte { return long }, longErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			err := tr.AddArchive(bytes.NewReader(tc.data()), "set.txz")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("AddArchive = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := tr.Get("usr/share/man/cat1/x.0")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Content(), text.Bytes()) {
				t.Error("usr/share/man/cat1/x.0 differs from what was compressed")
			}
			if f, err := tr.Get("var/zeros"); err != nil || f.Size != 256<<10 {
				t.Errorf("var/zeros: %v, %v", f, err)
			}
		})
	}
}
