package fstree_test

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestTarOwnerRange: a PAX uid or gid past 32 bits was cut to its low 32
// bits (uid 4294967297 became 1, 4294967296 root). Such an owner, or a
// negative one, is refused naming the entry; the largest 32-bit id is kept.
func TestTarOwnerRange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		uid, gid int
		want     string // "" for accepted
	}{
		{"uid 2^32+1", 1<<32 + 1, 0, "entry 1 (./f): owner 4294967297:0 out of range"},
		{"uid 2^32", 1 << 32, 0, "entry 1 (./f): owner 4294967296:0 out of range"},
		{"gid 2^40", 0, 1 << 40, "entry 1 (./f): owner 0:1099511627776 out of range"},
		{"largest", 0xFFFFFFFF, 0xFFFFFFFF, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./f", Mode: 0o644, Uid: tc.uid, Gid: tc.gid, Format: tar.FormatPAX}); err != nil {
				t.Fatal(err)
			}
			tw.Close()
			tr := fstree.New()
			err := tr.AddArchive(bytes.NewReader(buf.Bytes()), "o.tar")
			if tc.want == "" {
				n, gerr := tr.Get("f")
				if err != nil || gerr != nil || n.UID != uint32(tc.uid) || n.GID != uint32(tc.gid) {
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
