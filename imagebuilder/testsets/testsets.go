// Package testsets writes tar archives shaped like NetBSD release sets for
// the image builder's tests and benchmarks: "./" paths, no directory
// entries, one crunched binary behind many hard links, an mtree list,
// device nodes and symlinks. Content is pseudo-random but deterministic.
package testsets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/ulikunitz/xz"
)

// Mtime is the modification time every member carries.
var Mtime = time.Unix(1600000000, 0)

// Blob returns n deterministic bytes that do not compress to nothing and
// contain no all-zero 1 KiB block.
func Blob(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(255) + 1)
	}
	return b
}

// ELF returns n bytes that start with the ELF header fields a reader of
// the machine looks at (e_ident, e_type, e_machine) for class, byte order
// data and machine, followed by program bytes.
func ELF(class elf.Class, data elf.Data, machine elf.Machine, n int) []byte {
	b := append([]byte(elf.ELFMAG), byte(class), byte(data), byte(elf.EV_CURRENT))
	b = append(b, make([]byte, elf.EI_NIDENT-len(b))...)
	var order binary.AppendByteOrder = binary.LittleEndian
	if data == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	b = order.AppendUint16(b, uint16(elf.ET_EXEC))
	b = order.AppendUint16(b, uint16(machine))
	return append(b, Blob(3, max(n-len(b), 0))...)
}

// RescueNames are the crunched programs linked to /rescue/sh (150 of them).
func RescueNames() []string {
	base := []string{"sh", "init", "mount", "mount_ext2fs", "mount_ffs", "umount", "ls", "cp",
		"mv", "rm", "ln", "cat", "ed", "ifconfig", "route", "ping", "halt", "reboot", "shutdown", "fsck"}
	for i := len(base); i < 150; i++ {
		base = append(base, fmt.Sprintf("prog%03d", i))
	}
	return base
}

// Entry is one member of a test set.
type Entry struct {
	Hdr  tar.Header // its tar header
	Data []byte     // its content, for a regular file
}

// Rescue returns the members of a rescue-like set with a crunched binary of
// binSize bytes.
func Rescue(binSize int) []Entry {
	var es []Entry
	names := RescueNames()
	es = append(es, file("./rescue/sh", 0555, Blob(1, binSize)))
	for _, n := range names[1:] {
		es = append(es, Entry{Hdr: tar.Header{Typeflag: tar.TypeLink, Name: "./rescue/" + n, Linkname: "./rescue/sh", Mode: 0555}})
	}
	es = append(es,
		Entry{Hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "./rescue/rsh", Linkname: "sh", Mode: 0777}},
		Entry{Hdr: tar.Header{Typeflag: tar.TypeChar, Name: "./dev/tty00", Mode: 0600, Devmajor: 8, Devminor: 0}},
		Entry{Hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "./dev/ld1e", Mode: 0640, Gid: 5, Devmajor: 19, Devminor: 12}},
	)
	var mtree bytes.Buffer
	fmt.Fprintln(&mtree, "#set rescue\n. type=dir")
	for _, e := range es {
		fmt.Fprintln(&mtree, e.Hdr.Name)
	}
	es = append(es, file("./etc/mtree/set.rescue", 0444, mtree.Bytes()))
	return es
}

// Many returns the members of a set of about total bytes in n files spread
// over directories, with a few hard links and symlinks, like base.tgz.
func Many(n, total int) []Entry {
	var es []Entry
	r := rand.New(rand.NewPCG(42, 42))
	avg := total / n
	for i := 0; i < n; i++ {
		dir := fmt.Sprintf("./usr/share/d%02d/s%02d", i%23, i%7)
		size := int(r.IntN(2*avg + 1))
		es = append(es, file(fmt.Sprintf("%s/f%05d", dir, i), 0444, Blob(uint64(i), size)))
		if i%97 == 0 {
			es = append(es, Entry{Hdr: tar.Header{Typeflag: tar.TypeLink, Name: fmt.Sprintf("%s/l%05d", dir, i), Linkname: fmt.Sprintf("%s/f%05d", dir, i)}})
		}
		if i%89 == 0 {
			es = append(es, Entry{Hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: fmt.Sprintf("%s/s%05d", dir, i), Linkname: fmt.Sprintf("f%05d", i), Mode: 0777}})
		}
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Hdr.Name)
	}
	sort.Strings(names)
	var mtree bytes.Buffer
	for _, n := range names {
		fmt.Fprintln(&mtree, n)
	}
	return append(es, file("./etc/mtree/set.base", 0444, mtree.Bytes()))
}

func file(name string, mode int64, data []byte) Entry {
	return Entry{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, Data: data}
}

// Tar writes es as a tar stream to w, in the order given.
func Tar(w io.Writer, es []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range es {
		h := e.Hdr
		if h.ModTime.IsZero() {
			h.ModTime = Mtime
		}
		h.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	return tw.Close()
}

// Bytes returns es as a tar, compressed as "tar", "tgz" or "txz".
func Bytes(es []Entry, format string) ([]byte, error) {
	var raw bytes.Buffer
	if err := Tar(&raw, es); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	switch format {
	case "tar":
		return raw.Bytes(), nil
	case "tgz":
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestSpeed)
		if _, err := zw.Write(raw.Bytes()); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case "txz":
		xw, err := xz.NewWriter(&out)
		if err != nil {
			return nil, err
		}
		if _, err := xw.Write(raw.Bytes()); err != nil {
			return nil, err
		}
		if err := xw.Close(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("format %q: want tar, tgz or txz", format)
	}
	return out.Bytes(), nil
}
