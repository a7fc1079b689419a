package fstree_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestGNUEntryTypes reads the entries GNU tar writes besides files: the
// volume label of tar --label ('V', refused as an unsupported type though
// bsdtar lists such an archive), is skipped, its name no path; a dumpdir
// of tar --listed-incremental ('D', whose data lists the names the
// directory held) is the directory, as GNU tar and bsdtar extract it; a
// continuation of a file begun in an earlier volume of tar --multi-volume
// ('M') is refused, saying to join the volumes.
func TestGNUEntryTypes(t *testing.T) {
	gnu := func(hs ...tar.Header) []byte {
		t.Helper()
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			h.Format = tar.FormatGNU
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	// GNU tar writes a volume label, and the header of each volume after
	// the first, without the "ustar" magic: known by its checksum alone,
	// such a .tar was "unknown format (not gzip, xz or tar)".
	noMagic := func(b []byte) []byte {
		copy(b[257:265], make([]byte, 8))
		copy(b[148:156], "        ")
		sum := 0
		for _, c := range b[:512] {
			sum += int(c)
		}
		copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	file := tar.Header{Typeflag: tar.TypeReg, Name: "./d/f", Mode: 0644, Size: 3}
	for _, tc := range []struct {
		name string
		data []byte
		want string // error; "" to read ./d as a 0750 directory holding f
	}{
		{"volume label", gnu(tar.Header{Typeflag: 'V', Name: "NETBSD 9.1/..", Mode: 0644},
			tar.Header{Typeflag: tar.TypeDir, Name: "./d/", Mode: 0750}, file), ""},
		{"volume label, no magic", noMagic(gnu(tar.Header{Typeflag: 'V', Name: "NETBSD", Mode: 0644},
			tar.Header{Typeflag: tar.TypeDir, Name: "./d/", Mode: 0750}, file)), ""},
		{"dumpdir", gnu(tar.Header{Typeflag: 'D', Name: "./d/", Mode: 0750, Size: 3}, file), ""},
		{"multi-volume", gnu(tar.Header{Typeflag: 'M', Name: "./big", Mode: 0644, Size: 5}),
			"entry 1 (./big): a continuation of a file begun in an earlier volume of a multi-volume archive (GNU tar --multi-volume): join the volumes into one archive"},
		{"multi-volume, no magic", noMagic(gnu(tar.Header{Typeflag: 'M', Name: "./big", Mode: 0644, Size: 5})), "entry 1 (./big): a continuation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			err := tr.AddArchive(bytes.NewReader(tc.data), "set.tar")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := tr.Get("d")
			if err != nil || d.Type != fstree.Dir || d.Perm != 0750 {
				t.Fatalf("d: %+v %v, want a 0750 directory", d, err)
			}
			if got := d.Names(); len(got) != 1 || got[0] != "f" {
				t.Errorf("d holds %q, want [f]", got)
			}
			if got := tr.Root.Names(); len(got) != 1 {
				t.Errorf("the root holds %q, want [d] alone", got)
			}
		})
	}
}
