package fetch

import (
	"bufio"
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/internal/setname"
)

// Digests maps a file name in a release directory ("rescue.tgz") to its
// lower-case hex SHA512, as listed in that directory's SHA512 file.
type Digests map[string]string

// ParseDigests reads a BSD-style digest file, one `SHA512 (name) = hex` line
// per file, as NetBSD publishes in binary/sets/SHA512 and
// binary/kernel/SHA512. Blank lines are ignored, and so is a line that
// repeats an earlier one's name and digest; a name listed with two
// digests is an ErrNotDigestFile error naming both lines. An HTML page, a line in any
// other form, or a file listing nothing is an ErrNotDigestFile error naming
// the line, since a mirror that answers something else (an index page, a
// captive portal) must never be trusted as a source of digests.
func ParseDigests(data []byte) (Digests, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '<' {
		return nil, fmt.Errorf("%w: content is HTML or XML (starts with %q), not `SHA512 (name) = hex` lines",
			ErrNotDigestFile, firstLine(trimmed, 40))
	}
	d := Digests{}
	lineOf := map[string]int{} // where each name was listed first
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, sum, err := parseDigestLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d %q: %w", ErrNotDigestFile, n, clip(line, 60), err)
		}
		// A name listed twice alike is harmless; with two digests,
		// either may be the wrong one, and taking one would fail
		// every run with a mismatch.
		if first, ok := lineOf[name]; ok {
			if d[name] != sum {
				return nil, fmt.Errorf("%w: lines %d and %d list %s with different digests", ErrNotDigestFile, first, n, name)
			}
			continue
		}
		lineOf[name], d[name] = n, sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotDigestFile, err)
	}
	if len(d) == 0 {
		return nil, fmt.Errorf("%w: no `SHA512 (name) = hex` line found", ErrNotDigestFile)
	}
	return d, nil
}

// parseDigestLine splits `SHA512 (name) = hex`.
func parseDigestLine(line string) (name, sum string, err error) {
	rest, ok := strings.CutPrefix(line, "SHA512 (")
	if !ok {
		return "", "", fmt.Errorf("does not start with \"SHA512 (\"")
	}
	i := strings.LastIndex(rest, ") = ")
	if i < 0 {
		return "", "", fmt.Errorf("missing \") = \"")
	}
	name, sum = rest[:i], strings.ToLower(strings.TrimSpace(rest[i+4:]))
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return "", "", fmt.Errorf("bad file name %q", name)
	}
	if len(sum) != 2*sha512.Size {
		return "", "", fmt.Errorf("digest has %d hex digits, want %d", len(sum), 2*sha512.Size)
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return "", "", fmt.Errorf("digest is not hex: %w", err)
	}
	return name, sum, nil
}

// SetFile finds the file that holds set name ("rescue" -> "rescue.tgz" or
// "rescue.tar.xz"). A name that already carries an extension is looked up as
// is; one with an extension the release's file lacks ("rescue.tar.xz" in a
// release of .tgz sets) is refused naming that file. The error lists the
// sets the release has otherwise.
func (d Digests) SetFile(set string) (file, sum string, err error) {
	if s, ok := d[set]; ok {
		return set, s, nil
	}
	for _, ext := range setname.Release {
		if s, ok := d[set+ext]; ok {
			return set + ext, s, nil
		}
	}
	// A name with another series' extension (9.x has .tgz sets, 10.x
	// .tar.xz ones) is refused with the name this release has: taking
	// it would fetch a file other than the one named.
	if base, ok := setname.Release.Cut(set); ok {
		for _, other := range setname.Release {
			if _, ok := d[base+other]; ok {
				return "", "", fmt.Errorf("%w %q: the release's SHA512 lists %s, not %s", ErrUnknownSet, set, base+other, set)
			}
		}
	}
	return "", "", fmt.Errorf("%w %q: the release's SHA512 lists %s", ErrUnknownSet, set, strings.Join(d.Sets(), ", "))
}

// Sets returns the set names the digest file lists, sorted, without
// extensions, each once (a set may be listed as two archives, rescue.tgz
// and rescue.tar.xz).
func (d Digests) Sets() []string {
	var names []string
	for f := range d {
		if i := strings.IndexByte(f, '.'); i > 0 {
			f = f[:i]
		}
		names = append(names, f)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// HashFile returns the hex SHA512 of the regular file at path. Anything
// else (a FIFO, a device, a directory) is refused, matching
// regfile.ErrNotRegular, without waiting: opening a FIFO to read would
// wait for a writer for ever.
func HashFile(path string) (string, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func firstLine(b []byte, max int) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return clip(string(b), max)
}

func clip(s string, max int) string {
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
