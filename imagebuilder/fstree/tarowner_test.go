package fstree_test

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// ownedTar is a tar of one empty file, ./f, of owner uid:gid, given in
// PAX records (pax) or in base-256 header fields, as GNU tar writes an
// id past 2097151. Made by hand: archive/tar's Writer takes ids as an
// int, which a 32-bit host cuts to 32 bits.
func ownedTar(t *testing.T, uid, gid int64, pax bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var rec string
	if pax {
		for _, kv := range []string{"uid=" + strconv.FormatInt(uid, 10), "gid=" + strconv.FormatInt(gid, 10)} {
			// A record's length counts its own digits.
			n := len(kv) + 3
			for len(strconv.Itoa(n))+len(kv)+2 != n {
				n++
			}
			rec += fmt.Sprintf("%d %s\n", n, kv)
		}
		// Written as a regular file, made the PAX header below.
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/f", Mode: 0o644, Size: int64(len(rec)), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	at := buf.Len()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./f", Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if pax {
		b[156] = tar.TypeXHeader
		checksum(b[:512])
	} else {
		h := b[at : at+512]
		for i, id := range []int64{uid, gid} {
			f := h[108+8*i : 116+8*i]
			binary.BigEndian.PutUint64(f, uint64(id))
			f[0] |= 0x80 // base-256; a negative id's first byte is 0xff
		}
		checksum(h)
	}
	return b
}

// checksum sets the checksum of tar header block h.
func checksum(h []byte) {
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// TestTarOwnerRange: a PAX uid or gid past 32 bits was cut to its low 32
// bits (uid 4294967297 became 1, 4294967296 root), and on a 32-bit host
// (where archive/tar cuts ids to an int) it still was, and ids from 2^31
// were refused as negative. Such an owner, or a negative one, is refused
// naming the entry; the ids up to the largest 32-bit one are kept, on any
// host, from PAX records or base-256 header fields.
func TestTarOwnerRange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		uid, gid int64
		pax      bool
		want     string // "" for accepted
		wide     bool   // the case needs a 64-bit int (see below)
	}{
		{"PAX uid 2^32+1", 1<<32 + 1, 0, true, "entry 1 (./f): owner 4294967297:0 out of range", false},
		{"PAX uid 2^32", 1 << 32, 0, true, "entry 1 (./f): owner 4294967296:0 out of range", false},
		{"PAX gid 2^32", 0, 1 << 32, true, "entry 1 (./f): owner 0:4294967296 out of range", false},
		{"PAX gid 2^40", 0, 1 << 40, true, "entry 1 (./f): owner 0:1099511627776 out of range", false},
		{"PAX uid -1", -1, 0, true, "entry 1 (./f): owner -1:0 out of range", false},
		{"PAX 2^31", 1 << 31, 1 << 31, true, "", false},
		{"PAX largest", 0xFFFFFFFF, 0xFFFFFFFF, true, "", false},
		{"PAX root", 0, 0, true, "", false},
		{"field 2^31", 1 << 31, 1<<31 + 1, false, "", false},
		{"field largest", 0xFFFFFFFF, 0xFFFFFFFF, false, "", false},
		{"field 2097152", 2097152, 7, false, "", false},
		// archive/tar gives a field's id in an int: past 32 bits, or
		// negative, a 32-bit host sees only its low 32 bits.
		{"field uid 2^32", 1 << 32, 0, false, "entry 1 (./f): owner 4294967296:0 out of range", true},
		{"field gid -1", 0, -1, false, "entry 1 (./f): owner 0:-1 out of range", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wide && strconv.IntSize == 32 {
				t.Skip("archive/tar hands a 32-bit host this id cut to 32 bits")
			}
			tr := fstree.New()
			err := tr.AddArchive(bytes.NewReader(ownedTar(t, tc.uid, tc.gid, tc.pax)), "o.tar")
			if tc.want == "" {
				n, gerr := tr.Get("f")
				if err != nil || gerr != nil || int64(n.UID) != tc.uid || int64(n.GID) != tc.gid {
					t.Errorf("AddArchive = %v, f = %+v %v, want owner %d:%d", err, n, gerr, tc.uid, tc.gid)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AddArchive = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
