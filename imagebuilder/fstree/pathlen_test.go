package fstree_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// deepPath is a path of n bytes in Clean's form: "d/a/a/.../f" with as
// many one-byte levels as fit, the last name padded to reach n.
func deepPath(n int) string {
	levels := (n - 3) / 2
	p := "d/" + strings.Repeat("a/", levels)
	return p + strings.Repeat("f", n-len(p))
}

// paxFile is a tar holding one file, named in a PAX header, of one byte.
func paxFile(t *testing.T, name string) []byte {
	var set bytes.Buffer
	tw := tar.NewWriter(&set)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0644, Size: 1, Format: tar.FormatPAX}); err != nil {
		t.Fatalf("%.100s: %.200v", name, err)
	}
	if _, err := tw.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return set.Bytes()
}

// TestPathLengthLimit: a path longer than NetBSD looks up (PATH_MAX 1024
// with its NUL, which the full name "/"+path must fit) is refused
// wherever it enters the tree, naming the limit; one of exactly
// MaxPathLen bytes goes in. A path of 1023 bytes was taken, and its
// full name of 1024 is ENAMETOOLONG to NetBSD's namei. Unbounded, one set
// entry of 40,000 levels made every walk of the tree build paths of
// quadratic total length (gigabytes).
func TestPathLengthLimit(t *testing.T) {
	longest := deepPath(fstree.MaxPathLen)
	if len(longest) != 1022 {
		t.Fatalf("deepPath(%d) is %d bytes", fstree.MaxPathLen, len(longest))
	}
	tests := []struct {
		name, path string
		refused    bool
	}{
		{"1022 bytes", longest, false},
		{"1022 bytes with ./ and a trailing /", "./" + longest + "/", false},
		{"1023 bytes", deepPath(1023), true},
		{"1023 bytes with ./", "./" + deepPath(1023), true},
		{"40,000 levels", "./d/" + strings.Repeat("a/", 40000) + "f", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean, err := fstree.Clean(tt.path)
			putErr := fstree.New().Put(tt.path, fstree.NewFile(0644, []byte("x")))
			linkErr := func() error {
				tr := fstree.New()
				if err := tr.Put("x", fstree.NewFile(0644, nil)); err != nil {
					t.Fatal(err)
				}
				return tr.Link(tt.path, "x")
			}()
			tarErr := fstree.New().AddTar(bytes.NewReader(paxFile(t, strings.TrimSuffix(tt.path, "/"))), "deep.tar")
			if !tt.refused {
				if err != nil || len(clean) != fstree.MaxPathLen || putErr != nil || linkErr != nil || tarErr != nil {
					t.Fatalf("Clean: %d bytes, %v; Put: %v; Link: %v; AddTar: %v; want the path taken", len(clean), err, putErr, linkErr, tarErr)
				}
				return
			}
			for what, err := range map[string]error{"Clean": err, "Put": putErr, "Link": linkErr, "AddTar": tarErr} {
				if !errors.Is(err, fstree.ErrPathTooLong) || !strings.Contains(err.Error(), "bytes, more than the 1022") {
					t.Errorf("%s: %v; want ErrPathTooLong naming the limit 1022", what, err)
					continue
				}
				// The path is named, shortened: the error stays a line.
				if len(err.Error()) > 300 || !strings.Contains(err.Error(), "d/a/a/a/a/a") {
					t.Errorf("%s: the error (%d bytes) does not name the path shortened: %.400s", what, len(err.Error()), err)
				}
			}
		})
	}
}

// TestDeepPathBoundedAllocation: a set entry of 40,000 levels is refused
// as it is read, allocating a bounded amount: the read and a walk of the
// tree took gigabytes, quadratic in the depth.
func TestDeepPathBoundedAllocation(t *testing.T) {
	set := paxFile(t, "./d/"+strings.Repeat("a/", 40000)+"f")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tr := fstree.New()
	err := tr.AddTar(bytes.NewReader(set), "deep.tar")
	walked := 0
	tr.Walk(func(string, *fstree.Node) error { walked++; return nil })
	runtime.ReadMemStats(&after)
	if !errors.Is(err, fstree.ErrPathTooLong) {
		t.Errorf("AddTar of a path of 40,000 levels: %v; want ErrPathTooLong", err)
	}
	if walked != 1 {
		t.Errorf("the tree holds %d paths, want only the root", walked)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 50<<20 {
		t.Errorf("reading and walking a %d-byte set allocated %d MiB, want under 50", len(set), alloc>>20)
	}
}
