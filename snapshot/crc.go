package snapshot

import (
	"encoding/binary"
	"hash/crc32"
	"sync"
)

// softCRCBytes is how much of a digest is hashed by softUpdate before it
// switches to hash/crc32's. The latter uses SSE4.2's CRC32 instruction,
// ~10x faster, but its first use builds tables for it that cost ~0.3-0.4
// ms on the test host: more than a restore of a mostly empty guest (the
// demo's 48 KiB) spends hashing in software, ~0.03 ms. A restore checks
// the memory digest in a fresh process every time.
const softCRCBytes = 512 << 10

// slicing8 holds the tables of a table-driven CRC-32C reading 8 bytes at
// a step: row 0 the byte-wise table, row k the CRC of a byte followed by
// k zero bytes. Built on first use, ~8 KiB, in microseconds.
var slicing8 = sync.OnceValue(func() *[8][256]uint32 {
	var t [8][256]uint32
	for i := range 256 {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ crc32.Castagnoli
			} else {
				c >>= 1
			}
		}
		t[0][i] = c
	}
	for i := range 256 {
		for k := 1; k < 8; k++ {
			t[k][i] = t[k-1][i]>>8 ^ t[0][t[k-1][i]&0xff]
		}
	}
	return &t
})

// softUpdate is crc32.Update(crc, castagnoli(), p) without hash/crc32's
// tables for the CRC32 instruction (see softCRCBytes).
func softUpdate(crc uint32, p []byte) uint32 {
	t := slicing8()
	crc = ^crc
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint32(p)
		crc = t[7][crc&0xff] ^ t[6][crc>>8&0xff] ^ t[5][crc>>16&0xff] ^ t[4][crc>>24] ^
			t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return ^crc
}
