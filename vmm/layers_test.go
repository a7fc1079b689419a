package vmm_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPackagesBelowVMM keeps the folders showing the direction of use:
// what lies under vmm/ is the machine's own (its legacy devices), imported
// by vmm alone; what devices and loaders share with the machine (buses,
// PCI, guest memory) lies beside vmm, not inside it.
func TestPackagesBelowVMM(t *testing.T) {
	const mod = "github.com/smolvmm/smolvmm/"
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		inVMM := strings.HasPrefix(filepath.ToSlash(rel), "vmm/")
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, mod+"vmm/") && !inVMM {
				t.Errorf("%s imports %s: a package vmm's neighbours need belongs beside vmm, not under it", rel, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked %d Go files under %s: not the module", checked, root)
	}
}
