package plainname

import (
	"strings"
	"testing"
)

// TestPlain: the names of a release's parts are plain; what would leave
// or change a cache path or a mirror URL is not, nor a name longer than
// MaxLen, which Plain's doc promised and did not check (its callers did).
func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"10.1", true},
		{"evbarm", true},
		{"rescue", true},
		{"rescue.tgz", true},
		{".hidden", true}, // service.conf refuses it itself: a set name is also a directory's
		{strings.Repeat("x", MaxLen), true},
		{strings.Repeat("x", MaxLen+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{`a\b`, false},
		{"rescue?x", false},
		{"rescue#x", false},
		{"a%2f", false},
		{"res cue", false},
	} {
		if got := Plain(tc.v); got != tc.want {
			t.Errorf("Plain(%.20q) (%d bytes) = %v, want %v", tc.v, len(tc.v), got, tc.want)
		}
	}
}
