package guests

import (
	"os"
	"strconv"
)

// HaltMessage is what NetBSD prints on COM1 when it halts without ACPI, and
// what the bad guest prints in "halt" mode before polling the UART forever.
const HaltMessage = "The operating system has halted.\r\nPlease press any key to reboot.\r\n\r\n"

// DemoDone is the last line the demo guest prints before it exits.
const DemoDone = "smolvmm-demo: done"

// VblkPattern returns the 512 bytes the vblk guest writes to its test sector
// for the "seq=N" word: bytes i&0xff, overwritten at the start by
// "smolvmm-write-test seq=N\n". Tests compare the disk image against it.
func VblkPattern(seq uint32) []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	copy(b, "smolvmm-write-test seq="+strconv.FormatUint(uint64(seq), 10)+"\n")
	return b
}

// VblkSector0 is how the vblk guest's test disk starts; the guest prints
// the first 16 bytes of sector 0.
const VblkSector0 = "SMOLVMM-SECTOR-0"

// WriteVblkDisk writes the 1 MiB image the vblk tests start from to path
// and returns its content: VblkSector0, then a pattern that makes any stray
// write show.
func WriteVblkDisk(path string) ([]byte, error) {
	img := make([]byte, 1<<20)
	for i := range img {
		img[i] = byte(i*7 + i>>9)
	}
	copy(img, VblkSector0)
	return img, os.WriteFile(path, img, 0o644)
}

// VtcpStream returns the first n bytes of the stream the vtcp guest sends
// and expects: byte i is i + 31*(i>>8), modulo 256, so that a run of bytes
// at the wrong offset does not match. Host-side peers of the guest (a
// listener it sends to, a client of its listener) send and check it.
func VtcpStream(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i + 31*(i>>8))
	}
	return b
}
