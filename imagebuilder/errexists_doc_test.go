package imagebuilder_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestErrExistsDoc: ErrExists's doc spoke only of Build and Config.Force,
// while the data image builders wrap it too when DataOptions.Force is
// not set (datacommit_test.go checks they do). Its doc names every
// builder that returns it and the field that lets it replace the file.
func TestErrExistsDoc(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "build.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	ast.Inspect(f, func(n ast.Node) bool {
		if g, ok := n.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, s := range g.Specs {
				if v := s.(*ast.ValueSpec); len(v.Names) == 1 && v.Names[0].Name == "ErrExists" {
					doc = g.Doc.Text() + v.Doc.Text()
				}
			}
		}
		return true
	})
	if doc == "" {
		t.Fatal("no doc for ErrExists in build.go")
	}
	doc = strings.Join(strings.Fields(doc), " ")
	for _, name := range []string{"Build", "WriteImage", "Config.Force", "BuildDataImageOptions", "DataOptions.Force"} {
		if !strings.Contains(doc, name) {
			t.Errorf("ErrExists's doc does not name %s:\n%s", name, doc)
		}
	}
}
