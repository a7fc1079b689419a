package virtio_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The virtio packages are libraries: their documentation says what a
// value is, never which command-line flag a CLI reads it from (`go doc
// ./virtio/blk Spec` read "Spec is one `-d` flag").
func TestDocsNameNoFlags(t *testing.T) {
	flag := regexp.MustCompile("`--?[A-Za-z]")
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, g := range f.Comments {
			for _, c := range g.List {
				if m := flag.FindString(c.Text); m != "" {
					t.Errorf("%s: comment names a CLI flag (%s…): %s", fset.Position(c.Pos()), m, c.Text)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 20 {
		t.Fatalf("only %d Go files scanned", files)
	}
}
