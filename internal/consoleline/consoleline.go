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
// could change the match (Split): $ means the end of a complete line, and
// a UTF-8 character is matched once complete (Line.Settled).
package consoleline

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"unicode/utf8"
)

// Max bounds the bytes a line keeps; the bytes past it are left out, and
// the line is then cut (Line.Cut).
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
	cut   bool // bytes past Max were left out of the line
}

// Add takes the next console byte.
func (l *Line) Add(c byte) Step {
	if l.ended {
		l.b, l.ended, l.cut = l.b[:0], false, false
	}
	switch {
	case c == '\n':
		l.ended = true
		return Ended
	case c == '\r':
		return Skipped
	case len(l.b) == Max:
		l.cut = true
		return Skipped
	}
	l.b = append(l.b, c)
	return Grew
}

// Bytes is the line so far (or the line just ended); it is valid until the
// next Add.
func (l *Line) Bytes() []byte { return l.b }

// Cut reports whether bytes past Max were left out of the line: Bytes is
// then only its start, and where it ends says nothing of where the line
// does.
func (l *Line) Cut() bool { return l.cut }

// Settled is the part of the line the bytes that follow cannot change: all
// of it but a UTF-8 character it ends partway through, which a pattern
// would read as U+FFFD (`ready\PL` would match "ready" and the first byte
// of "é"). An ended or cut line is settled whole. It is valid until the
// next Add.
func (l *Line) Settled() []byte {
	if l.ended || l.cut {
		return l.b
	}
	return l.b[:len(l.b)-Unfinished(l.b)]
}

// Unfinished is the length of the UTF-8 character b ends partway through,
// the bytes more could complete; 0 when b ends with a complete character
// or with bytes no more could make one of.
func Unfinished(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return 0
			}
			return len(b) - i
		}
	}
	return 0
}

// Split divides re into the part matched against a line as it grows
// (partial) and the part matched against complete lines only (whole);
// either is nil when re has no such part, and a line matches re when it
// matches either.
//
// A match on a line still being written counts when nothing that follows
// can undo it, as for `login: ` (a prompt that never ends its line), and
// it then comes as soon as the line holds it. A match that can end with an
// assertion on what follows, $ or \z (the end of the line) or \b or \B (a
// word boundary), would come too early: `upper=13$` on "upper=13" of
// "upper=130048 KiB". Such a pattern sees only ended lines, without their
// line end, and never a line cut at Max bytes (Line.Cut), whose end is not
// the line's. An assertion that something else follows does not count:
// `\blogin: ` matches as the line grows. Of a pattern whose alternatives
// differ in this (`login: |port 80$`), each alternative goes to its part,
// also when they share a start (`\$ |\$$`, which the parser writes as
// `\$(?: |$)`). A pattern that does not parse here (its syntax flags
// unknown) is taken as whole-line.
func Split(re *regexp.Regexp) (partial, whole *regexp.Regexp) {
	if re == nil {
		return nil, nil
	}
	r, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil, re
	}
	p, w := split(r)
	switch {
	case p == nil:
		return nil, re
	case w == nil:
		return re, nil
	}
	// Each part is a part of a pattern that compiled; should one not
	// compile as printed, the pattern stays whole-line, as one that does
	// not parse.
	pre, perr := regexp.Compile(p.String())
	wre, werr := regexp.Compile(w.String())
	if perr != nil || werr != nil {
		return nil, re
	}
	return pre, wre
}

// WholeLines reports whether re is matched against complete lines only:
// every match of it can end with an assertion on what follows (Split).
func WholeLines(re *regexp.Regexp) bool {
	p, _ := Split(re)
	return p == nil
}

// EndAssertion names, as written ("$", `\z`, `\b` or `\B`), the assertion
// that keeps re from matching line as it grows (Matcher.Unended): the one
// ending the first alternative of re's whole-line part (Split) that
// matches line, or its first alternative when none does; "" when re has
// no whole-line part.
func EndAssertion(re *regexp.Regexp, line string) string {
	if re == nil {
		return ""
	}
	r, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return ""
	}
	p, w := split(r)
	if w == nil {
		return ""
	}
	// Split takes a pattern whose parts do not compile as whole-line.
	if sp, _ := Split(re); sp != nil || p == nil {
		r = w
	}
	var first *syntax.Regexp
	for _, e := range ends(r) {
		a := endsWith(e)
		if a == nil {
			continue
		}
		if first == nil {
			first = a
		}
		if ere, err := regexp.Compile(e.String()); err == nil && ere.MatchString(line) {
			first = a
			break
		}
	}
	if first == nil {
		return ""
	}
	switch first.Op {
	case syntax.OpEndText:
		if first.Flags&syntax.WasDollar == 0 {
			return `\z`
		}
	case syntax.OpWordBoundary:
		return `\b`
	case syntax.OpNoWordBoundary:
		return `\B`
	}
	return "$" // OpEndLine, under (?m)
}

// ends are the alternatives a match of r can end in, each a pattern of its
// own: those of an alternation (through captures), and those of the last
// element of a concatenation, each with what comes before it.
func ends(r *syntax.Regexp) []*syntax.Regexp {
	var es []*syntax.Regexp
	switch r.Op {
	case syntax.OpAlternate:
		for _, sub := range r.Sub {
			es = append(es, ends(sub)...)
		}
	case syntax.OpCapture:
		for _, e := range ends(r.Sub[0]) {
			es = append(es, withSub(r, e))
		}
	case syntax.OpConcat:
		for _, e := range ends(r.Sub[len(r.Sub)-1]) {
			es = append(es, withLast(r, e))
		}
	default:
		es = append(es, r)
	}
	return es
}

// split divides r as Split does: the alternatives of an alternation
// (through captures) go each to its part, and so do those of the last
// element of a concatenation, each with what comes before it; anything
// else goes whole to one part.
func split(r *syntax.Regexp) (partial, whole *syntax.Regexp) {
	switch r.Op {
	case syntax.OpAlternate:
		var ps, ws []*syntax.Regexp
		for _, sub := range r.Sub {
			p, w := split(sub)
			if p != nil {
				ps = append(ps, p)
			}
			if w != nil {
				ws = append(ws, w)
			}
		}
		return alternate(r, ps), alternate(r, ws)
	case syntax.OpCapture:
		p, w := split(r.Sub[0])
		return withSub(r, p), withSub(r, w)
	case syntax.OpConcat:
		last := r.Sub[len(r.Sub)-1]
		if !nullable(last) {
			p, w := split(last)
			return withLast(r, p), withLast(r, w)
		}
		// A match may end before last, so what comes before decides too.
		// P matches wherever PX does when X can match empty anywhere
		// (`80$x?`, `a(?:b|)`): X then decides nothing.
		if emptyAnywhere(last) {
			if len(r.Sub) == 1 {
				return r, nil
			}
			rest := r.Sub[0]
			if len(r.Sub) > 2 {
				c := *r
				c.Sub = slices.Clone(r.Sub[:len(r.Sub)-1])
				rest = &c
			}
			return split(rest)
		}
		// P(A|B) matches as PA|PB: the parser writes `\$ |\$$` as
		// `\$(?: |$)`, whose `\$ ` need not wait for the line's end. The
		// arms that consume text decide alone, as above; each other one
		// (an assertion) with P.
		as := arms(last)
		if len(as) == 1 {
			break
		}
		var ps, ws []*syntax.Regexp
		if solid := only(last, func(a *syntax.Regexp) bool { return !nullable(a) }); solid != nil {
			p, w := split(withLast(r, solid))
			ps, ws = appendPart(ps, p), appendPart(ws, w)
		}
		for _, a := range as {
			if nullable(a) {
				p, w := split(withLast(r, a))
				ps, ws = appendPart(ps, p), appendPart(ws, w)
			}
		}
		alt := &syntax.Regexp{Op: syntax.OpAlternate}
		return alternate(alt, ps), alternate(alt, ws)
	}
	if endsWith(r) != nil {
		return nil, r
	}
	return r, nil
}

// arms are the alternatives of r, an alternation (through captures, each
// arm in them): r alone when it is none.
func arms(r *syntax.Regexp) []*syntax.Regexp {
	switch r.Op {
	case syntax.OpAlternate:
		var as []*syntax.Regexp
		for _, sub := range r.Sub {
			as = append(as, arms(sub)...)
		}
		return as
	case syntax.OpCapture:
		as := arms(r.Sub[0])
		if len(as) == 1 {
			break
		}
		for i, a := range as {
			as[i] = withSub(r, a)
		}
		return as
	}
	return []*syntax.Regexp{r}
}

// only is r, an alternation (through captures) as arms sees it, with
// only the arms keep holds for; nil for none.
func only(r *syntax.Regexp, keep func(*syntax.Regexp) bool) *syntax.Regexp {
	switch r.Op {
	case syntax.OpAlternate:
		var subs []*syntax.Regexp
		for _, sub := range r.Sub {
			if a := only(sub, keep); a != nil {
				subs = append(subs, a)
			}
		}
		return alternate(r, subs)
	case syntax.OpCapture:
		if len(arms(r.Sub[0])) > 1 {
			return withSub(r, only(r.Sub[0], keep))
		}
	}
	if keep(r) {
		return r
	}
	return nil
}

// appendPart appends part to parts, the alternatives of a part of a
// pattern, unless it is nil; an alternation goes as its alternatives.
func appendPart(parts []*syntax.Regexp, part *syntax.Regexp) []*syntax.Regexp {
	switch {
	case part == nil:
		return parts
	case part.Op == syntax.OpAlternate:
		return append(parts, part.Sub...)
	}
	return append(parts, part)
}

// alternate is the alternation of subs, like r; nil for none.
func alternate(r *syntax.Regexp, subs []*syntax.Regexp) *syntax.Regexp {
	switch len(subs) {
	case 0:
		return nil
	case 1:
		return subs[0]
	}
	c := *r
	c.Sub = subs
	return &c
}

// withSub is r with its only sub replaced by sub; nil for a nil sub.
func withSub(r, sub *syntax.Regexp) *syntax.Regexp {
	if sub == nil {
		return nil
	}
	c := *r
	c.Sub = []*syntax.Regexp{sub}
	return &c
}

// withLast is the concatenation r with its last element replaced by last;
// nil for a nil last.
func withLast(r, last *syntax.Regexp) *syntax.Regexp {
	if last == nil {
		return nil
	}
	c := *r
	c.Sub = append(slices.Clone(r.Sub[:len(r.Sub)-1]), last)
	return &c
}

// endsWith is the assertion on what follows that a match of r can end
// with, nothing being consumed after it (nil for none): only such an
// assertion can fail once more of the line comes.
func endsWith(r *syntax.Regexp) *syntax.Regexp {
	switch r.Op {
	case syntax.OpEndLine, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return r
	case syntax.OpConcat:
		for i := len(r.Sub) - 1; i >= 0; i-- {
			if a := endsWith(r.Sub[i]); a != nil {
				return a
			}
			if !nullable(r.Sub[i]) {
				break // a match consumes text after anything before it
			}
		}
	case syntax.OpAlternate:
		for _, sub := range r.Sub {
			if a := endsWith(sub); a != nil {
				return a
			}
		}
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return endsWith(r.Sub[0])
	case syntax.OpRepeat:
		if r.Max != 0 {
			return endsWith(r.Sub[0])
		}
	}
	return nil
}

// nullable reports whether r can match without consuming text.
func nullable(r *syntax.Regexp) bool { return matchesEmpty(r, true) }

// emptyAnywhere reports whether r can match without consuming text
// wherever it stands: it can without an assertion.
func emptyAnywhere(r *syntax.Regexp) bool { return matchesEmpty(r, false) }

// matchesEmpty reports whether r can match without consuming text, where
// its assertions hold if asserted.
func matchesEmpty(r *syntax.Regexp, asserted bool) bool {
	switch r.Op {
	case syntax.OpEmptyMatch, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return asserted
	case syntax.OpLiteral:
		return len(r.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return matchesEmpty(r.Sub[0], asserted)
	case syntax.OpRepeat:
		return r.Min == 0 || matchesEmpty(r.Sub[0], asserted)
	case syntax.OpConcat:
		for _, sub := range r.Sub {
			if !matchesEmpty(sub, asserted) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, sub := range r.Sub {
			if matchesEmpty(sub, asserted) {
				return true
			}
		}
	}
	return false
}

// Matcher matches a ready pattern against console lines, as Split says:
// its partial part against each line as it grows, its whole-line part
// against each line once it ends (not cut at Max).
type Matcher struct {
	partial, whole *regexp.Regexp
	line           Line
}

// NewMatcher is a Matcher for re; nil for a nil re.
func NewMatcher(re *regexp.Regexp) *Matcher {
	if re == nil {
		return nil
	}
	m := &Matcher{}
	m.partial, m.whole = Split(re)
	return m
}

// Add takes the next console byte and reports whether the pattern matches
// the line it grew or ended.
func (m *Matcher) Add(c byte) bool {
	switch m.line.Add(c) {
	case Grew:
		return m.partial != nil && m.partial.Match(m.line.Settled())
	case Ended:
		// A character left unfinished (the line ended, or was cut, in
		// it) was not matched as the line grew.
		line := m.line.Bytes()
		if m.partial != nil && Unfinished(line) > 0 && m.partial.Match(line) {
			return true
		}
		return m.whole != nil && !m.line.Cut() && m.whole.Match(line)
	}
	return false
}

// Unended is the line being written, for a pattern whose whole-line part
// would match it were it not waiting for the line's end (as a prompt's
// pattern with $ does on a prompt); "" otherwise, or when the last byte
// ended a line.
func (m *Matcher) Unended() string {
	return Unended(m.whole, &m.line)
}

// Unended is l when it is being written (not ended, not cut) and the
// whole-line pattern whole (Split) matches it as it stands; "" otherwise.
func Unended(whole *regexp.Regexp, l *Line) string {
	if whole == nil || l.ended || l.cut || len(l.b) == 0 || !whole.Match(l.b) {
		return ""
	}
	return string(l.b)
}
