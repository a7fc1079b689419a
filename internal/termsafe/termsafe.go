// Package termsafe makes names read from untrusted data (a kernel, a set's
// entries) safe to print to a terminal.
package termsafe

import "strconv"

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
