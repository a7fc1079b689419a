// Package consoleline splits a guest's console output into the lines that
// ready patterns are matched against, so that the machine (vmm's
// Config.Ready) and the bench (bench.Ready.Pattern) see the same lines.
//
// A line ends at '\n'. '\r' is no part of a line: NetBSD ends its lines
// with "\n\r" (older kernels) or "\r\n" (9.x's cnputc), and with the '\r'
// kept a line would start or end with it, so that a pattern anchored with
// ^ or $ would match under one line end and not the other.
package consoleline

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
