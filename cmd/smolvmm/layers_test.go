package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// flagMentionAllowed lists the few library strings that name a token
// looking like one of smolvmm's flags but mean something else. Keyed by
// file (relative to the module root) and the token.
var flagMentionAllowed = map[string]bool{
	// NetBSD's own boot flags, quoted from /boot's syntax.
	"internal/bootargs/bootargs.go -a": true, "internal/bootargs/bootargs.go -d": true,
	"internal/bootargs/bootargs.go -m": true, "internal/bootargs/bootargs.go -s": true,
	"internal/bootargs/bootargs.go -v": true, "internal/bootargs/bootargs.go -x": true,
	"netbsdboot/append.go -s": true,
}

// flagCommentAllowed lists, likewise, the comments that name another
// program's flag or NetBSD's. Comments only: a string literal in these
// files naming one is still refused (one allowance for a comment about
// the linker's -r -d excused every -d of the file's messages).
var flagCommentAllowed = map[string]bool{
	// NetBSD's own boot flags.
	"netbsdboot/append.go -a": true, "netbsdboot/append.go -d": true,
	"netbsdboot/append.go -m": true, "netbsdboot/append.go -v": true,
	"netbsdboot/append.go -x": true, "netbsdboot/load.go -s": true,
	"vmm/machine.go -s": true, "vmm/machine.go -a": true,
	// Other programs' flags: the linker's (-r -d, -s), cp -p, sed -i,
	// touch -d, cp -a, ip -s, go test -v, kstrip -o.
	"kstrip/parse.go -d": true, "netbsdboot/load.go -d": true, "kstrip/kstriptest/kstriptest.go -s": true,
	"imagebuilder/postinst.go -p": true, "imagebuilder/postinst.go -i": true,
	"imagebuilder/postinst.go -d": true, "imagebuilder/postinst.go -a": true,
	"netback/tap_linux.go -s": true, "internal/testreport/main.go -v": true,
	"internal/atomicfile/atomicfile.go -o": true,
	// A process's command line, as ps shows it.
	"internal/lockholder/lockholder.go -k": true, "internal/lockholder/lockholder.go -d": true,
}

// programNamed are the library string literals that may say "smolvmm"
// or ",ro": a file format's name, a hash's seed and the disk spec's form,
// which ParseDiskSpec parses and Spec.String writes. Any other
// speaks of this program or of -d's spelling, which is cmd's to do.
var programNamed = map[string]bool{
	`"not a smolvmm snapshot"`:                                        true,
	`"smolvmm ext2 %d %d %q"`:                                         true,
	`"smolvmm kvm identity 1\x00"`:                                    true, // a hash's domain separator
	`"disk %q: empty image path (the form is path[,ro][,serial=ID])"`: true,
	`",ro"`: true, // Spec.String writes the form ParseDiskSpec reads
}

// testSupport are packages that exist for tests and drive other programs:
// their literals are shell scripts and other tools' command lines.
var testSupport = map[string]bool{"guests": true, "internal/nestedkvm": true}

// TestLibrariesNameNoFlags keeps command-line advice in cmd: no string
// literal or comment in a non-test Go file outside cmd/ may mention one of smolvmm's
// flags (-m, -d, --net, --mirror...), -d's ",ro" or the program itself
// ("smolvmm runs x86 guests", "use ,ro on both"). Libraries return errors with the
// facts (typed, or with sentinels), and cmd/smolvmm adds which flag to
// change. A literal that is only the flag (an argv element for another
// program) is not a message and is not checked.
func TestLibrariesNameNoFlags(t *testing.T) {
	names := map[string]bool{}
	for _, c := range commands() {
		for _, f := range c.Flags {
			for _, n := range f.Names() {
				names[n] = true
			}
		}
	}
	names[cli.HelpFlag.Names()[0]] = false
	if !names["m"] || !names["net"] || !names["mirror"] {
		t.Fatalf("the commands' flags were not found: %v", names)
	}
	var long, short []string
	for n, ok := range names {
		switch {
		case !ok:
		case len(n) == 1:
			short = append(short, regexp.QuoteMeta(n))
		default:
			long = append(long, regexp.QuoteMeta(n))
		}
	}
	sort.Strings(long)
	sort.Strings(short)
	flagRE := regexp.MustCompile(`(?:^|[\s(\[` + "`" + `'",;])(--(?:` + strings.Join(long, "|") + `)|-(?:` +
		strings.Join(short, "|") + `))(?:$|[^A-Za-z0-9_-])`)

	// The program as a word in a sentence ("smolvmm runs"), not a name
	// that contains it (an import path, "smolvmm-bench/1", a temporary's).
	programRE := regexp.MustCompile(`(?:^|[^/\w.-])smolvmm(?: |'s\b)|,ro\b`)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "cmd" || testSupport[filepath.ToSlash(rel)] || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Error(err) // someone's edit in progress: check the other files
			return nil
		}
		// Godoc too: a library's comments say what a value is, not which
		// flag a CLI reads it from ("ParseMAC parses a --mac value").
		for _, g := range f.Comments {
			for _, c := range g.List {
				for _, m := range flagRE.FindAllStringSubmatch(c.Text, -1) {
					if key := filepath.ToSlash(rel) + " " + m[1]; !flagMentionAllowed[key] && !flagCommentAllowed[key] {
						t.Errorf("%s: comment names the flag %s: describe the value, not the CLI: %s", fset.Position(c.Pos()), m[1], c.Text)
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || flagRE.FindString(s) == strings.TrimSpace(s) && !strings.Contains(strings.TrimSpace(s), " ") {
				return true // an argv element such as "-m"
			}
			if programRE.MatchString(s) && !programNamed[lit.Value] {
				t.Errorf("%s: %s names the program or -d's ,ro: state the facts (the library's API, the machine) and let cmd/smolvmm speak of itself", fset.Position(lit.Pos()), lit.Value)
			}
			for _, m := range flagRE.FindAllStringSubmatch(s, -1) {
				if !flagMentionAllowed[filepath.ToSlash(rel)+" "+m[1]] {
					t.Errorf("%s: %s names the flag %s: return the facts and let cmd/smolvmm advise", fset.Position(lit.Pos()), lit.Value, m[1])
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d Go files scanned under %s", files, root)
	}
}

// TestExportedNamesDocumented: every exported function, method (of an
// exported type), type, constant and variable in a non-test Go file of
// the module has a doc comment (a grouped const or var may share its
// group's). Methods such as Error, String and Unwrap had none. So has
// every exported method of an exported interface and every exported field
// of an exported struct type (undocumentedMembers says what passes): the
// snapshot header's fields, VectorBackend's methods and some 250 others
// had none.
func TestExportedNamesDocumented(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Error(err)
			return nil
		}
		if f.Name.Name == "main" {
			return nil // nothing of a command is exported to a reader
		}
		for _, m := range undocumentedMembers(fset, f) {
			t.Errorf("%s: %s has no doc comment", fset.Position(m.Pos()), m.Name)
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if !decl.Name.IsExported() || decl.Doc != nil {
					continue
				}
				if decl.Recv != nil && !exportedReceiver(decl.Recv.List[0].Type) {
					continue
				}
				t.Errorf("%s: %s has no doc comment", fset.Position(decl.Pos()), decl.Name.Name)
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					var names []*ast.Ident
					var doc *ast.CommentGroup
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						names, doc = []*ast.Ident{spec.Name}, spec.Doc
					case *ast.ValueSpec:
						names, doc = spec.Names, spec.Doc
						if doc == nil {
							doc = spec.Comment // a line comment after it
						}
					}
					if doc != nil || decl.Doc != nil {
						continue
					}
					for _, n := range names {
						if n.IsExported() {
							t.Errorf("%s: %s has no doc comment", fset.Position(n.Pos()), n.Name)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d Go files scanned under %s", files, root)
	}
}

// undocumentedMembers returns the exported methods of f's exported
// interface types that have no comment of their own (above or after),
// and the exported fields of its exported struct types that
// have none and are named neither in their type's doc nor in a comment of
// the group of fields they are in (fields with no blank line between
// them): a comment above a group such as "IER, LCR and MCR are the
// registers" documents each it names. Embedded fields and interfaces are
// documented where their type is.
func undocumentedMembers(fset *token.FileSet, f *ast.File) []*ast.Ident {
	var missing []*ast.Ident
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, spec := range g.Specs {
			ts := spec.(*ast.TypeSpec)
			if !ts.Name.IsExported() {
				continue
			}
			switch typ := ts.Type.(type) {
			case *ast.InterfaceType:
				for _, m := range typ.Methods.List {
					if m.Doc != nil || m.Comment != nil {
						continue
					}
					for _, n := range m.Names {
						if n.IsExported() {
							missing = append(missing, n)
						}
					}
				}
			case *ast.StructType:
				doc := ts.Doc
				if doc == nil && len(g.Specs) == 1 {
					doc = g.Doc
				}
				missing = append(missing, undocumentedFields(fset, typ, doc)...)
			}
		}
	}
	return missing
}

// undocumentedFields returns st's exported fields that have no comment
// and are named neither in their type's doc nor in a comment of their
// group (undocumentedMembers).
func undocumentedFields(fset *token.FileSet, st *ast.StructType, typeDoc *ast.CommentGroup) []*ast.Ident {
	var missing []*ast.Ident
	var typeText []string
	if typeDoc != nil {
		typeText = []string{typeDoc.Text()}
	}
	var group []string // the comments of the group of fields so far
	prevEnd := -1
	line := func(p token.Pos) int { return fset.Position(p).Line }
	for _, fd := range st.Fields.List {
		start := fd.Pos()
		if fd.Doc != nil {
			start = fd.Doc.Pos()
		}
		if prevEnd < 0 || line(start) > prevEnd+1 {
			group = nil
		}
		prevEnd = line(fd.End())
		for _, c := range []*ast.CommentGroup{fd.Doc, fd.Comment} {
			if c != nil {
				group = append(group, c.Text())
			}
		}
		if fd.Doc != nil || fd.Comment != nil {
			continue
		}
		for _, n := range fd.Names {
			if n.IsExported() && !namedIn(n.Name, group) && !namedIn(n.Name, typeText) {
				missing = append(missing, n)
			}
		}
	}
	return missing
}

// namedIn reports whether any of comments names name as a word.
func namedIn(name string, comments []string) bool {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`)
	for _, c := range comments {
		if re.MatchString(c) {
			return true
		}
	}
	return false
}

// exportedReceiver reports whether a method's receiver type (T, *T, T[P])
// is exported: the methods of unexported types are not in the godoc.
func exportedReceiver(x ast.Expr) bool {
	for {
		switch e := x.(type) {
		case *ast.StarExpr:
			x = e.X
		case *ast.IndexExpr:
			x = e.X
		case *ast.IndexListExpr:
			x = e.X
		case *ast.Ident:
			return e.IsExported()
		default:
			return false
		}
	}
}

// TestUndocumentedMembers: what the godoc check takes for a documented
// interface method or struct field, and what it flags.
func TestUndocumentedMembers(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the flagged names, space-separated
	}{
		{"interface method without comment", "type I interface {\n\t// A is.\n\tA()\n\tB()\n\tc()\n}", "B"},
		{"interface method with line comment", "type I interface {\n\tA() // is\n}", ""},
		{"embedded interface", "type I interface {\n\tio.Reader\n}", ""},
		{"unexported interface", "type i interface {\n\tA()\n}", ""},
		{"field without comment", "type S struct {\n\t// A is.\n\tA int\n\tB int\n\tc int\n}", "B"},
		{"line comment", "type S struct {\n\tA int // is\n}", ""},
		{"named in the group's comment", "type S struct {\n\t// A and B are.\n\tA int\n\tB int\n}", ""},
		{"group ends at a blank line", "type S struct {\n\t// A and B are.\n\tA int\n\n\tB int\n}", "B"},
		{"named in the type's doc", "// S is, with its A.\ntype S struct {\n\tA int\n\tB int\n}", "B"},
		{"named as part of a word", "type S struct {\n\t// AB is.\n\tAB int\n\tA int\n}", "A"},
		{"several names, one comment", "type S struct {\n\t// the pair\n\tA, B int\n}", ""},
		{"several names, none", "type S struct {\n\tA, B int\n}", "A B"},
		{"embedded field", "type S struct {\n\tio.Reader\n}", ""},
		{"unexported type", "type s struct {\n\tA int\n}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", "package x\n\n"+tt.src+"\n", parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range undocumentedMembers(fset, f) {
				got = append(got, n.Name)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("flagged %q, want %q", g, tt.want)
			}
		})
	}
}
