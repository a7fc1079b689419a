package fetch

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestPackageDocForeignCache: the package documentation says which cache
// root is refused (ErrForeignCache): the default one, another user's from
// XDG_CACHE_HOME or HOME down, not what lies above, not a cache given by
// its path, and nothing for other users. It said a cache through any
// other user's directory from / was refused to root and read-only for
// anybody else.
func TestPackageDocForeignCache(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(f.Doc.Text()), " ")
	for _, want := range []string{"ErrForeignCache", "ForeignCacheError", "DefaultCacheDir", "XDG_CACHE_HOME or HOME",
		"above XDG_CACHE_HOME or HOME are not looked at", "Fetcher.Cache", "nobody but root is refused anything"} {
		if !strings.Contains(doc, want) {
			t.Errorf("package doc does not say %q:\n%s", want, doc)
		}
	}
	for _, gone := range []string{"Anybody else uses it read-only", "ForeignCache tells"} {
		if strings.Contains(doc, gone) {
			t.Errorf("package doc still says %q:\n%s", gone, doc)
		}
	}
}
