// Package consoleline splits a guest's console output into the lines that
// ready patterns are matched against, so that the machine (vmm's
// Config.Ready) and the bench (bench.Ready.Pattern) see the same lines.
//
// A line ends at '\n'. '\r' is no part of a line: NetBSD ends its lines
// with "\n\r" (older kernels) or "\r\n" (9.x's cnputc), and with the '\r'
// kept a line would start or end with it, so that a pattern anchored with
// ^ or $ would match under one line end and not the other.
//
// A pattern is matched against a line as it grows unless what follows
// could change the match (WholeLines): $ means the end of a complete line.
package consoleline

import (
	"regexp"
	"regexp/syntax"
	"slices"
)

// Max bounds the bytes a line keeps; the bytes past it are left out.
const Max = 4096

// Step says what Add did with a byte.
type Step uint8

const (
	// Skipped: the byte is no part of the line (a '\r', or a byte past
	// Max): the line is as it was.
	Skipped Step = iota
	// Grew: the byte was added to the line.
	Grew
	// Ended: the byte was the '\n' that ends the line; Bytes still
	// returns the ended line until the next Add.
	Ended
)

// Line is the console line being written. The zero value is an empty line.
type Line struct {
	b     []byte
	ended bool // the last byte ended the line: the next Add starts a new one
}

// Add takes the next console byte.
func (l *Line) Add(c byte) Step {
	if l.ended {
		l.b, l.ended = l.b[:0], false
	}
	switch {
	case c == '\n':
		l.ended = true
		return Ended
	case c == '\r' || len(l.b) == Max:
		return Skipped
	}
	l.b = append(l.b, c)
	return Grew
}

// Bytes is the line so far (or the line just ended); it is valid until the
// next Add.
func (l *Line) Bytes() []byte { return l.b }

// WholeLines reports whether re is matched against complete lines only.
// A match on a line still being written counts when nothing that follows
// can undo it, as for `login: ` (a prompt that never ends its line), and
// it then comes as soon as the line holds it. A pattern with an assertion
// on what follows, $ or \z (the end of the line) or \b or \B (a word
// boundary), would match too early: `upper=13$` on "upper=13" of
// "upper=130048 KiB". Such a pattern sees only ended lines, without their
// line end. A pattern that does not parse here (its syntax flags unknown)
// is taken as one.
func WholeLines(re *regexp.Regexp) bool {
	r, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return true
	}
	return looksAhead(r)
}

// looksAhead reports whether r holds an assertion on the text after it.
func looksAhead(r *syntax.Regexp) bool {
	switch r.Op {
	case syntax.OpEndLine, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	return slices.ContainsFunc(r.Sub, looksAhead)
}

// Matcher matches a ready pattern against console lines, as WholeLines
// says: each line as it grows, or each line once it ends.
type Matcher struct {
	re    *regexp.Regexp
	whole bool
	line  Line
}

// NewMatcher is a Matcher for re; nil for a nil re.
func NewMatcher(re *regexp.Regexp) *Matcher {
	if re == nil {
		return nil
	}
	return &Matcher{re: re, whole: WholeLines(re)}
}

// Add takes the next console byte and reports whether the pattern matches
// the line it grew or ended.
func (m *Matcher) Add(c byte) bool {
	switch m.line.Add(c) {
	case Grew:
		return !m.whole && m.re.Match(m.line.Bytes())
	case Ended:
		return m.whole && m.re.Match(m.line.Bytes())
	}
	return false
}
