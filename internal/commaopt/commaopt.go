// Package commaopt reads the comma-separated option values of smolvmm's
// command line ("img,ro,serial=ID", "DIR,ro", "FILE,args") as QEMU's
// options do: a comma inside a part (a path's) is written twice.
package commaopt

import "strings"

// Split splits s at its single commas; a doubled comma stands for one,
// inside a part. Split("a,,b.img,ro") is ["a,b.img", "ro"].
func Split(s string) []string {
	var parts []string
	for {
		first, rest, found := Cut(s)
		parts = append(parts, first)
		if !found {
			return parts
		}
		s = rest
	}
}

// Cut returns s's first part, up to its first single comma, with each
// doubled comma read as one, and the rest after that comma as written;
// found is false when s has no single comma. Cut("x,,y.img,a,b") is
// "x,y.img", "a,b", true.
func Cut(s string) (first, rest string, found bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != ',' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == ',' {
			b.WriteByte(',')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return b.String(), "", false
}
