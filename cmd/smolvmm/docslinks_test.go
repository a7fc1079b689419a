package main

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestDocsLinks: every relative link in README.md and docs/*.md points at
// a file of the repository, and one with a #fragment at a heading of that
// Markdown file (or of its own, for a bare #fragment), by the anchors
// GitHub makes of headings. The README was split into an overview and
// guides under docs/, which link to each other's sections.
func TestDocsLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)
	scheme := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	anchors := map[string]map[string]bool{} // by path from the root
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		b, err := os.ReadFile("../../" + file)
		if err != nil {
			t.Fatal(err)
		}
		a := headingAnchors(string(b))
		anchors[file] = a
		return a
	}
	checked := 0
	for _, file := range docFiles(t) {
		b, err := os.ReadFile("../../" + file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(markdownProse(string(b)), "\n") {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if scheme.MatchString(target) {
					continue // http:, https:, mailto:
				}
				checked++
				where := fmt.Sprintf("%s:%d: link %s", file, i+1, target)
				p, frag, _ := strings.Cut(target, "#")
				dest := file
				if p != "" {
					if strings.HasPrefix(p, "/") {
						t.Errorf("%s: an absolute path; make it relative to %s", where, path.Dir(file))
						continue
					}
					dest = path.Clean(path.Join(path.Dir(file), p))
					if dest == ".." || strings.HasPrefix(dest, "../") {
						t.Errorf("%s leads out of the repository", where)
						continue
					}
					if _, err := os.Stat("../../" + dest); err != nil {
						t.Errorf("%s: no such file: %v", where, err)
						continue
					}
				}
				if frag == "" {
					continue
				}
				if !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s: a fragment of a file that is not Markdown", where)
					continue
				}
				if !anchorsOf(dest)[frag] {
					t.Errorf("%s: %s has no heading whose anchor is #%s", where, dest, frag)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked %d relative links only: the README and its guides link to each other more", checked)
	}
}

// markdownProse is md with its fenced code blocks and code spans blanked
// (kept as empty lines, so line numbers hold): a link there is code.
func markdownProse(md string) string {
	lines := strings.Split(md, "\n")
	fenced := false
	span := regexp.MustCompile("`[^`]*`")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			lines[i] = ""
			continue
		}
		if fenced {
			lines[i] = ""
			continue
		}
		lines[i] = span.ReplaceAllString(line, "``")
	}
	return strings.Join(lines, "\n")
}

// headingAnchors returns the anchors GitHub gives md's ATX headings: the
// heading's text (a link's text for the link), lower-cased, with all but
// letters, digits, spaces, hyphens and underscores dropped and each space
// a hyphen; a repeated anchor gets -1, -2...
func headingAnchors(md string) map[string]bool {
	a := map[string]bool{}
	seen := map[string]int{}
	heading := regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	inline := regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		m := heading.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		text := inline.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			a[fmt.Sprintf("%s-%d", id, n)] = true
		} else {
			a[id] = true
		}
		seen[id]++
	}
	return a
}
