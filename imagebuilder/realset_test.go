package imagebuilder_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// paxLikeRescue writes a set shaped like one NetBSD's build makes with pax
// from an mtree list: an entry for "." itself and for directories (with
// their modes, one after its files), the crunched binary of binSize bytes
// listed under its first name and 149 hard links to it, a ustar name long
// enough to use the prefix field, a PAX header for a name past ustar's
// limits, a GNU long-name entry and a PAX global header.
func paxLikeRescue(t testing.TB, binSize int) []byte {
	t.Helper()
	mt := time.Unix(1660000000, 0)
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	put := func(h tar.Header, data []byte) {
		t.Helper()
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatUSTAR
		}
		if h.Typeflag != tar.TypeXGlobalHeader {
			h.ModTime, h.Uname, h.Gname = mt, "root", "wheel"
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	put(tar.Header{Typeflag: tar.TypeXGlobalHeader, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": "built from an mtree list"}}, nil)
	put(tar.Header{Typeflag: tar.TypeDir, Name: ".", Mode: 0755}, nil)
	put(tar.Header{Typeflag: tar.TypeDir, Name: "./etc", Mode: 0755}, nil)
	names := testsets.RescueNames()
	put(tar.Header{Typeflag: tar.TypeReg, Name: "./rescue/" + names[0], Mode: 0555}, testsets.Blob(5, binSize))
	for _, n := range names[1:] {
		put(tar.Header{Typeflag: tar.TypeLink, Name: "./rescue/" + n, Linkname: "./rescue/" + names[0], Mode: 0555}, nil)
	}
	put(tar.Header{Typeflag: tar.TypeDir, Name: "./rescue", Mode: 0755}, nil) // after its files
	long := "./usr/share/" + strings.Repeat("long-directory-name/", 6) + "file.txt"
	put(tar.Header{Typeflag: tar.TypeReg, Name: long, Mode: 0444}, []byte("in the ustar prefix\n"))
	deep := "./usr/share/" + strings.Repeat("deeper-directory-name-", 10) + "/" + strings.Repeat("more-", 20) + "/x"
	put(tar.Header{Typeflag: tar.TypeReg, Name: deep, Mode: 0444, Format: tar.FormatPAX}, []byte("pax path\n"))
	gnu := "./usr/share/gnu/" + strings.Repeat("n", 120)
	put(tar.Header{Typeflag: tar.TypeReg, Name: gnu, Mode: 0444, Format: tar.FormatGNU}, []byte("gnu long name\n"))
	put(tar.Header{Typeflag: tar.TypeReg, Name: "./etc/mtree/set.rescue", Mode: 0444}, []byte("./rescue/sh type=file\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	return gz.Bytes()
}

// TestBuildPaxShapedRescue builds the rescue service from a set shaped like
// a real one (a 5 MiB crunched binary behind 150 names, directory entries,
// the quirks of pax and GNU headers) in the default 10 MiB, and checks the
// image with e2fsck, debugfs and a read-only mount.
func TestBuildPaxShapedRescue(t *testing.T) {
	set := filepath.Join(t.TempDir(), "rescue.tgz")
	if err := os.WriteFile(set, paxLikeRescue(t, 5<<20), 0644); err != nil {
		t.Fatal(err)
	}
	cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "rescue", ""), SizeMB: 10, Timestamp: ts}
	tree, err := imagebuilder.BuildTree(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "root.img")
	if err := imagebuilder.WriteImage(tree, cfg, img); err != nil {
		t.Fatal(err)
	}
	imagecheck.Fsck(t, img)
	for req, want := range map[string]string{
		"stat /sbin/init":           "Links: 153",
		"stat /rescue":              "Mode:  0755",
		"stat /bin/sh":              fmt.Sprintf("Size: %d", 5<<20),
		"cat /etc/mtree/set.rescue": "./rescue/sh",
		"cat /usr/share/gnu/" + strings.Repeat("n", 120):                           "gnu long name",
		"cat /usr/share/" + strings.Repeat("long-directory-name/", 6) + "file.txt": "in the ustar prefix",
	} {
		if got := imagecheck.Debugfs(t, img, req); !strings.Contains(got, want) {
			t.Errorf("debugfs %q: want %q in\n%s", req, want, got)
		}
	}
	imagecheck.Compare(t, imagecheck.Describe(tree, ts), imagecheck.Mounted(t, img))
}
