package fetch

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestPackageDocForeignCache: the package documentation said what a
// cache this process may not write still serves, but not that a cache
// reached through another user's directory or symbolic link is refused
// to root and only read by anybody else (ErrForeignCache), whatever its
// modes. It names that error, the other user's parts, and both rules.
func TestPackageDocForeignCache(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(f.Doc.Text()), " ")
	for _, want := range []string{"ErrForeignCache", "ForeignCacheError", "another user's directory or symbolic link", "refused to root", "read-only"} {
		if !strings.Contains(doc, want) {
			t.Errorf("package doc does not say %q:\n%s", want, doc)
		}
	}
}
