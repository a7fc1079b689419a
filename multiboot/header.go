package multiboot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Multiboot v1 magic numbers.
const (
	HeaderMagic     = 0x1BADB002 // in the kernel's header
	BootloaderMagic = 0x2BADB002 // in EAX at entry
)

// Header flags (the kernel's requests). Bits 0-15 are required: a loader
// that does not understand one must refuse the kernel.
const (
	FlagPageAlign  = 1 << 0  // page-align modules (always done)
	FlagMemoryInfo = 1 << 1  // mem_lower/mem_upper and the memory map (always given)
	FlagVideoMode  = 1 << 2  // a video mode: accepted, no video info given (see Header.Check)
	FlagAOutKludge = 1 << 16 // load by the header's address fields, not ELF
)

// headerSearch is how far into the image a multiboot v1 header may start.
const headerSearch = 8192

// A multiboot2 header, which this loader does not boot, but names: its
// magic, 8-byte aligned within the first 32768 bytes, then architecture,
// header length and a checksum that makes the four sum to zero
// (Multiboot2 specification, 3.1.1 and 3.1.2).
const (
	header2Magic  uint32 = 0xE85250D6
	header2Search        = 32768
)

// ErrMultiboot2: the file has no multiboot v1 header but a multiboot2
// one: a multiboot2 kernel, which this multiboot v1 loader does not boot.
// Errors with it also wrap ErrNotMultiboot.
var ErrMultiboot2 = errors.New("a multiboot2 kernel, which this multiboot v1 loader does not boot")

// diagSearch is how far FindHeader keeps looking, only to tell "header too
// far" from "no header at all".
const diagSearch = 64 << 10

// Header is a multiboot v1 header as found in a kernel image.
type Header struct {
	// Magic, Flags and Checksum are the header's first three words
	// (Magic+Flags+Checksum is zero modulo 2^32).
	Magic, Flags, Checksum uint32
	// Address fields, meaningful when Flags has FlagAOutKludge.
	HeaderAddr, LoadAddr, LoadEndAddr, BSSEndAddr, EntryAddr uint32
	// Video fields, meaningful when Flags has FlagVideoMode.
	ModeType, Width, Height, Depth uint32
}

// FindHeader returns the first valid multiboot v1 header of the image r of
// size bytes and its file offset. The header must start 4-byte aligned in the
// first 8192 bytes, with magic + flags + checksum == 0. Address and video
// fields beyond the end of the file read as zero; Load checks that the ones
// it uses are present. A file without one but with a multiboot2 header
// gets an error wrapping ErrMultiboot2.
func FindHeader(r io.ReaderAt, size int64) (Header, int64, error) {
	if size < 0 {
		return Header{}, 0, fmt.Errorf("%w: negative file size %d", ErrNotMultiboot, size)
	}
	n := min(size, diagSearch)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, 0); err != nil && err != io.EOF {
		return Header{}, 0, fmt.Errorf("reading the first %d bytes: %w", n, err)
	}
	badSum := int64(-1)
	for off := int64(0); off+12 <= n; off += 4 {
		magic := binary.LittleEndian.Uint32(buf[off:])
		if magic != HeaderMagic {
			continue
		}
		flags := binary.LittleEndian.Uint32(buf[off+4:])
		sum := binary.LittleEndian.Uint32(buf[off+8:])
		if magic+flags+sum != 0 {
			if badSum < 0 && off < headerSearch {
				badSum = off
			}
			continue
		}
		if off+12 > headerSearch {
			return Header{}, off, fmt.Errorf("%w: %w: found at file offset %#x; relink the kernel with the header near the start of .text",
				ErrNotMultiboot, ErrHeaderTooFar, off)
		}
		return parseHeader(buf[off:]), off, nil
	}
	if badSum >= 0 {
		return Header{}, badSum, fmt.Errorf("%w: %w: magic %#x at file offset %#x but magic+flags+checksum != 0",
			ErrNotMultiboot, ErrBadChecksum, HeaderMagic, badSum)
	}
	if off, ok := findHeader2(buf); ok {
		return Header{}, off, fmt.Errorf("%w: %w: its multiboot2 header (magic %#x) is at file offset %#x, and it has no multiboot v1 header (magic %#x)",
			ErrNotMultiboot, ErrMultiboot2, header2Magic, off, HeaderMagic)
	}
	switch {
	case size == 0:
		return Header{}, 0, fmt.Errorf("%w: the file is empty", ErrNotMultiboot)
	case size < headerSearch:
		return Header{}, 0, fmt.Errorf("%w: no magic %#x at a 4-byte aligned offset in the file's %d bytes",
			ErrNotMultiboot, HeaderMagic, size)
	}
	return Header{}, 0, fmt.Errorf("%w: no magic %#x at a 4-byte aligned offset in the first %d bytes",
		ErrNotMultiboot, HeaderMagic, headerSearch)
}

// findHeader2 returns the offset of the first multiboot2 header in b, the
// file's first bytes, where the multiboot2 spec puts it: 8-byte aligned,
// its 16 fixed bytes in the first 32768, magic, architecture, header
// length and checksum summing to zero.
func findHeader2(b []byte) (int64, bool) {
	le := binary.LittleEndian
	for off := 0; off+16 <= min(len(b), header2Search); off += 8 {
		if le.Uint32(b[off:]) == header2Magic && le.Uint32(b[off:])+le.Uint32(b[off+4:])+le.Uint32(b[off+8:])+le.Uint32(b[off+12:]) == 0 {
			return int64(off), true
		}
	}
	return 0, false
}

// parseHeader decodes a header from b, reading fields past len(b) as zero.
func parseHeader(b []byte) Header {
	var w [12]uint32
	for i := range w {
		if 4*i+4 <= len(b) {
			w[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
	}
	return Header{
		Magic: w[0], Flags: w[1], Checksum: w[2],
		HeaderAddr: w[3], LoadAddr: w[4], LoadEndAddr: w[5], BSSEndAddr: w[6], EntryAddr: w[7],
		ModeType: w[8], Width: w[9], Height: w[10], Depth: w[11],
	}
}

// Check reports whether this loader can honour every required flag (bits
// 0-15), naming the bits it cannot. Page alignment of modules and memory
// information are always provided. A video mode (bit 2) is accepted but no
// video information is passed, as QEMU's -kernel loader does: the spec
// makes the header's mode a preference, smolvmm has no framebuffer, and
// kernels that ask for one (the multiboot spec's example kernel) still write
// to VGA text memory. Load adds a warning to the plan.
func (h Header) Check() error {
	unknown := h.Flags & 0xFFFF &^ (FlagPageAlign | FlagMemoryInfo | FlagVideoMode)
	if unknown != 0 {
		var bits []string
		for i := range 16 {
			if unknown&(1<<i) != 0 {
				bits = append(bits, fmt.Sprint(i))
			}
		}
		return fmt.Errorf("%w: flags %#x: required bit(s) %s unknown to this multiboot v1 loader (known: 0 page-align, 1 memory info, 2 video mode)",
			ErrUnsupportedFlags, h.Flags, strings.Join(bits, ", "))
	}
	return nil
}
