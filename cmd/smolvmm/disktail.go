package main

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz/lzma"

	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/internal/setname"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// warnDiskTail is warnHiddenTail and warnDiskContent for the -d image d
// of a command that has not opened it yet: only once it opens as the
// machine will open it (its ,ro), since an image refused is said by the
// machine, and a warning before that refusal advised changing a file the
// user may not read or write.
func warnDiskTail(w io.Writer, cmd string, d blk.Spec) {
	if st, err := os.Stat(d.Path); err != nil || !st.Mode().IsRegular() || st.Size() < blk.SectorSize {
		return // nothing to warn of: no need to open it
	}
	disk, err := blk.Open(d.Path, d.Options)
	if err != nil {
		return
	}
	disk.Close()
	warnHiddenTail(w, cmd, d.Path)
	warnDiskContent(w, cmd, d)
}

// warnHiddenTail warns on w, for command cmd, when the -d image at path
// ends in a partial sector, which the guest never sees: a file system
// made to the byte would be cut short without a word. The image is still
// used. The caller has opened it as the machine will (bench's
// checkDiskFile), or calls warnDiskTail: an image that cannot be opened is
// said elsewhere, in the command's own words; so is an image smaller than
// one sector, which the machine refuses (a warning that the guest sees 0
// bytes would contradict that).
func warnHiddenTail(w io.Writer, cmd, path string) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() < blk.SectorSize {
		return
	}
	hidden := blk.HiddenBytes(st.Size())
	if hidden == 0 {
		return
	}
	warnf(w, cmd, "-d %s: the image is %d bytes, not a whole number of %d-byte sectors, so the guest sees only %d of them and not the last %d; pad it to whole sectors with: truncate -s %%%d %s",
		path, st.Size(), blk.SectorSize, st.Size()-hidden, hidden, blk.SectorSize, shellWord(path))
}

// warnDiskContent warns on w, for command cmd, when the -d image d starts
// as a tar archive (a NetBSD set) or an ELF file (a kernel) does, which the
// guest would see as its disk, and write over unless ,ro: almost surely a
// set or kernel given as -d by mistake. It warns and does not refuse: a
// raw disk may start with anything, and a guest may have written a tar
// archive to its raw disk itself (tar cf /dev/rld1d). The caller has
// opened it as the machine will, as for warnHiddenTail.
func warnDiskContent(w io.Writer, cmd string, d blk.Spec) {
	f, err := os.Open(d.Path)
	if err != nil {
		return
	}
	b := make([]byte, peekLen)
	n, _ := io.ReadFull(f, b)
	f.Close()
	write := " and may write over them"
	if d.ReadOnly {
		write = ""
	}
	switch contentOf(b[:n]) {
	case contentTar:
		warnf(w, cmd, "-d %s: it starts with a tar header (ustar), as a tar archive such as a NetBSD set does, not a disk image: the guest sees the archive's bytes as its disk%s; %s",
			d.Path, write, mkimgAdvice(d.Path, d.Options))
	case contentELF:
		warnf(w, cmd, "-d %s: it starts with an ELF header, as a kernel does, not a disk image: the guest sees the file's bytes as its disk%s; %s",
			d.Path, write, kernelAdvice(d.Path))
	}
}

// shellWord is s as one word of a shell command line: as it is when it
// holds nothing a shell reads specially, else in single quotes.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+,:@%=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// checkDiskFormat refuses the -d image d when it is compressed or in a
// disk image format other than raw, as the machine would refuse it, and
// says how to make a raw image of it. What cannot be read is said when the
// machine opens it.
func checkDiskFormat(d blk.Spec) error {
	f, size, err := regfile.Open(d.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if err := blk.CheckRaw(f, size, d.Path); err != nil {
		return notRawAdvice(err, d.Options)
	}
	return nil
}

// decompressor is the command that decompresses a compressed image
// (blk.FormatError's Format), keeping it: keep, for a file with the
// format's suffix, which names the output; else stream writes to a file.
// A switch, not a map: a package-level map is built at every start.
func decompressor(format string) (suffix, keep, stream string, ok bool) {
	switch format {
	case "gzip":
		return ".gz", "gunzip -k", "gzip -dc", true
	case "xz":
		return ".xz", "xz -dk", "xz -dc", true
	case "bzip2":
		return ".bz2", "bunzip2 -k", "bzip2 -dc", true
	case "zstd":
		return ".zst", "zstd -d", "zstd -dc", true
	}
	return "", "", "", false
}

// notRawAdvice adds to blk's refusal of an image that is not raw
// (blk.FormatError) the command that makes a raw image of it, and the -d
// that gives it with the options opts of the refused -d (,ro, ,serial=);
// other errors are returned as they are. A compressed tar archive (a
// NetBSD set) or ELF file (a kernel) is no disk once decompressed either:
// for those it says what the file is and what to do with it instead.
func notRawAdvice(err error, opts blk.Options) error {
	var fe *blk.FormatError
	if !errors.As(err, &fe) {
		return err
	}
	p := fe.Path
	disk := func(out string) string { return shellWord(blk.Spec{Path: out, Options: opts}.String()) }
	if suffix, keep, stream, ok := decompressor(fe.Format); ok {
		decompress := fmt.Sprintf("%s %s > %s", stream, shellWord(p), shellWord(p+".raw"))
		out := p + ".raw"
		if o := strings.TrimSuffix(p, suffix); o != p && o != "" && !strings.HasSuffix(o, "/") {
			decompress, out = keep+" "+shellWord(p), o
		}
		switch contentOf(peekCompressed(p, fe.Format)) {
		case contentTar:
			if fe.Format == "bzip2" { // mkimg reads no bzip2
				img := setImageName(out)
				return fmt.Errorf("%w (decompressed, it is a tar archive, such as a NetBSD set: decompress it, keeping the original, with: %s, build a root image from the tar with: smolvmm mkimg -x %s -i %s, and give -d %s)",
					err, decompress, shellWord(out), shellWord(img), disk(img))
			}
			return fmt.Errorf("%w (decompressed, it is a tar archive, such as a NetBSD set: %s)", err, mkimgAdvice(p, opts))
		case contentELF:
			if fe.Format == "gzip" { // a kernel may be given gzipped
				return fmt.Errorf("%w (decompressed, it is an ELF file, such as a NetBSD kernel: %s)", err, kernelAdvice(p))
			}
			return fmt.Errorf("%w (decompressed, it is an ELF file, such as a NetBSD kernel: decompress it, keeping the original, with: %s, and give the kernel to run or bench with -k %s, not -d)",
				err, decompress, shellWord(out))
		}
		return fmt.Errorf("%w (decompress it, keeping the original, with: %s, and give -d %s)", err, decompress, disk(out))
	}
	out := strings.TrimSuffix(p, filepath.Ext(p)) + ".raw"
	if out == p {
		out = p + ".raw"
	}
	return fmt.Errorf("%w (convert it to a raw image with: qemu-img convert -O raw %s %s, and give -d %s)", err, shellWord(p), shellWord(out), disk(out))
}

// mkimgAdvice is what to do with the tar archive at path, which mkimg
// reads, given as a -d with options opts: build a root image from it.
func mkimgAdvice(path string, opts blk.Options) string {
	img := setImageName(path)
	return fmt.Sprintf("build a root image from it with: smolvmm mkimg -x %s -i %s, and give -d %s",
		shellWord(path), shellWord(img), shellWord(blk.Spec{Path: img, Options: opts}.String()))
}

// kernelAdvice is what to do with the ELF file (or gzipped one) at path
// given as a -d: boot it as a kernel. up and demo take no -k: run does.
func kernelAdvice(path string) string {
	return "give the kernel to run or bench with -k " + shellWord(path) + ", not -d"
}

// setImageName is the image, in the current directory, that the advice
// has mkimg build from the tar archive at path: named after the set
// (rescue.img for sets/rescue.tgz), never path itself.
func setImageName(path string) string {
	base := filepath.Base(path)
	n := setname.Any.Base(base)
	for _, ext := range []string{".gz", ".xz", ".bz2", ".zst", ".tar", ".img"} {
		n = strings.TrimSuffix(n, ext)
	}
	if n == "" || n == "." || n == "/" {
		n = "root"
	}
	if n+".img" == base {
		return n + "-root.img"
	}
	return n + ".img"
}

// diskContent is what a file given as a disk image holds at its start
// when that is known to be no disk's.
type diskContent int

const (
	contentUnknown diskContent = iota
	contentTar                 // a tar archive (ustar), such as a NetBSD set
	contentELF                 // an ELF file, such as a kernel
)

// contentOf tells from b, a file's first bytes, whether it is a tar
// archive (POSIX's or GNU's ustar magic at byte 257 of its first header)
// or an ELF file. A raw disk may start with anything, but a disk whose
// first sector is either is almost surely a mistake.
func contentOf(b []byte) diskContent {
	switch {
	case len(b) >= 262 && string(b[257:262]) == "ustar":
		return contentTar
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return contentELF
	}
	return contentUnknown
}

// peekLen is how much of a file's start contentOf needs: a tar header's
// magic ends at byte 262.
const peekLen = blk.SectorSize

// peekInput bounds the compressed bytes read to decompress peekLen
// bytes: bzip2 decompresses a whole block (900 kB at most) before its
// first byte, and a hostile file would otherwise be read to its end.
const peekInput = 4 << 20

// peekCompressed is the first bytes (up to peekLen) that the file at path,
// compressed in format (blk.FormatError's), decompresses to; nil when
// they cannot be had: a damaged stream, or zstd, which only a library
// outside the standard one reads.
func peekCompressed(path, format string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	in := bufio.NewReader(io.LimitReader(f, peekInput))
	var r io.Reader
	switch format {
	case "gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil
		}
		r = zr
	case "bzip2":
		r = bzip2.NewReader(in)
	case "xz":
		r = xzFirstBlock(in)
	}
	if r == nil {
		return nil
	}
	b := make([]byte, peekLen)
	n, _ := io.ReadFull(r, b)
	return b[:n]
}

// xzDict is the LZMA2 dictionary the peek decodes with, whatever the block
// declares (up to 4 GiB, allocated whole): the first peekLen bytes refer
// back no further than themselves.
const xzDict = 64 << 10

// xzFirstBlock reads the stream header and first block header of an xz
// file from r, and is the decoder of that block's data when it is LZMA2
// alone (xz's default; a set's or a kernel's), else nil.
func xzFirstBlock(r *bufio.Reader) io.Reader {
	var hdr [12]byte // magic, stream flags, their CRC32
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:6]) != "\xfd7zXZ\x00" {
		return nil
	}
	size, err := r.ReadByte()
	if err != nil || size == 0 { // 0: the index, a stream of no block
		return nil
	}
	bh := make([]byte, (int(size)+1)*4)
	bh[0] = size
	if _, err := io.ReadFull(r, bh[1:]); err != nil {
		return nil
	}
	if binary.LittleEndian.Uint32(bh[len(bh)-4:]) != crc32.ChecksumIEEE(bh[:len(bh)-4]) {
		return nil
	}
	flags := bh[1]
	field := bytes.NewReader(bh[2 : len(bh)-4])
	if flags&0x3 != 0 { // more than one filter
		return nil
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if !present {
			continue
		}
		if _, err := binary.ReadUvarint(field); err != nil {
			return nil
		}
	}
	id, err := binary.ReadUvarint(field)
	if err != nil || id != 0x21 { // LZMA2
		return nil
	}
	lz, err := (lzma.Reader2Config{DictCap: xzDict}).NewReader2(r)
	if err != nil {
		return nil
	}
	return lz
}
