// Package termsafe makes names read from untrusted data (a kernel, a set's
// entries) safe to print to a terminal.
package termsafe

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns s as it may be printed to a terminal: s itself when it
// is all printable ASCII (every real name), else s quoted with Go's escapes
// ("evil\x1b[2J"), so that hostile bytes cannot act on the terminal.
func Printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// Line returns s with each control character (C0, DEL, C1) and each
// format or separator character that reorders or breaks a line on a
// terminal (U+202E, U+2028, U+2029: Unicode's Cf, Zl, Zp) written as its
// Go escape (\n, \x1b, \u0085, \u202e) and each byte that is not UTF-8 as
// \xNN, the rest as it is: a message that carries names given by the
// user or read from a file stays one line and inert on a terminal, and
// keeps its quotes and its printable non-ASCII names readable. Unlike
// Printable it does not quote, so it may be applied to a whole message.
//
// A string with anything to escape has its backslashes doubled too, so
// that in it a backslash written in a name (x\n) is told from a control
// character escaped (x, a newline). A string with nothing to escape is
// returned as it is, backslashes and all: most messages, and those that
// quote bytes as Go does (bad magic "\x7fELF") read as written.
func Line(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case escaped(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune finds what makes Line escape: a rune it escapes, or the
// utf8.RuneError that ContainsFunc gives a byte that is not UTF-8 (a
// real U+FFFD only sends Line the long way, and is kept).
func unsafeRune(r rune) bool { return r == utf8.RuneError || escaped(r) }

// escaped says whether Line writes r as an escape: a control character,
// or a format or separator character (a bidirectional override shows a
// name reversed; a line or paragraph separator breaks the line).
func escaped(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}
