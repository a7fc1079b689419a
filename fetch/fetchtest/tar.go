package fetchtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"time"
)

// Entry is one member of a fake set.
type Entry struct {
	Name     string // as in NetBSD sets: "./rescue/sh"
	Body     string // file content
	Mode     int64  // permission bits; 0644 (files) or 0755 (dirs) when zero
	Type     byte   // tar.TypeReg when zero
	Linkname string // target of a hard link (tar.TypeLink) or symlink
	Devmajor int64  // a device node's major number
	Devminor int64  // and minor number
}

// SetTgz builds a gzipped tar in the style of NetBSD's sets: names start
// with "./", owned by root:wheel, with whatever entries are given (NetBSD's
// sets often omit directory entries, and so may the caller).
func SetTgz(entries ...Entry) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := time.Date(2022, 8, 4, 0, 0, 0, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname,
			Uname: "root", Gname: "wheel", ModTime: mtime, Devmajor: e.Devmajor, Devminor: e.Devminor,
			Format: tar.FormatUSTAR}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			panic("fetchtest: bad tar entry " + e.Name + ": " + err.Error())
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.Body))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// RescueSet is a tiny stand-in for NetBSD's rescue.tgz: one "crunched"
// binary with hard links, no directory entries, and the set's mtree file.
func RescueSet() []byte {
	return SetTgz(
		Entry{Name: "./rescue/sh", Body: "#!crunched rescue binary\n", Mode: 0o555},
		Entry{Name: "./rescue/init", Type: tar.TypeLink, Linkname: "./rescue/sh", Mode: 0o555},
		Entry{Name: "./rescue/mount", Type: tar.TypeLink, Linkname: "./rescue/sh", Mode: 0o555},
		Entry{Name: "./rescue/mount_ext2fs", Type: tar.TypeLink, Linkname: "./rescue/sh", Mode: 0o555},
		Entry{Name: "./etc/mtree/set.rescue", Body: "./rescue type=dir\n./rescue/sh type=file\n"},
	)
}
