package fstree_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// xzBlockSpec is a block of xzBlocks: its LZMA2 dictionary (the
// properties byte: 28 for 64 MiB, 40 for 4 GiB) and whether its header
// gives its sizes.
type xzBlockSpec struct {
	dict  byte
	sizes bool
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
			if j == 0 {
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
// before it is allocated; and, as each block's dictionary is allocated
// anew, so are blocks too small for their dictionaries, unless their
// headers give their sizes (a block never reaches back further).
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
		{"8 MiB", []xzBlockSpec{{22, false}}, ""},
		{"64 MiB", []xzBlockSpec{{28, false}}, ""},
		{"4 GiB", []xzBlockSpec{{40, false}}, "set.txz: xz block 1 (at byte 12) declares a 4294967295-byte LZMA2 dictionary, more than the 67108864 bytes (64 MiB, xz -9's) a set's xz blocks may declare, as the decoder allocates it whole: recompress the set with xz -9 or a lower preset"},
		{"96 MiB, sizes given", []xzBlockSpec{{29, true}}, "set.txz: xz block 1 (at byte 12) declares a 100663296-byte LZMA2 dictionary"},
		{"4 GiB in the third block", []xzBlockSpec{{22, false}, {22, true}, {40, false}}, "set.txz: xz block 3 (at byte "},
		{"4 GiB in every block", many(75, xzBlockSpec{40, false}), "set.txz: xz block 1 (at byte 12) declares a 4294967295-byte"},
		{"many small blocks of 64 MiB", many(100, xzBlockSpec{28, false}), "set.txz: xz block 2 (at byte "},
		{"many small blocks of 64 MiB, sizes given", many(100, xzBlockSpec{28, true}), ""},
		{"many small blocks of 4 KiB", many(100, xzBlockSpec{0, false}), ""},
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
			if got := after.TotalAlloc - before.TotalAlloc; got > 256<<20 {
				t.Errorf("reading the set allocated %d MiB", got>>20)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Get(strings.TrimPrefix(es[len(es)-1].Hdr.Name, "./")); err != nil {
					t.Error(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("AddArchive = %v, want %q", err, tc.want)
			}
		})
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
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Get(strings.TrimPrefix(es[len(es)-1].Hdr.Name, "./")); err != nil {
					t.Error(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("AddArchive = %v, want %q", err, tc.want)
			}
		})
	}
}
