package consoleline

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestLine feeds console output and checks the lines it ends and the one
// left being written, under either line end NetBSD uses.
func TestLine(t *testing.T) {
	long := strings.Repeat("x", Max)
	tests := []struct {
		name  string
		in    string
		ended []string
		last  string
	}{
		{"\\n\\r line ends", "boot\n\rroot on ld0a\n\rlogin: ", []string{"boot", "root on ld0a"}, "login: "},
		{"\\r\\n line ends", "boot\r\nroot on ld0a\r\nlogin: ", []string{"boot", "root on ld0a"}, "login: "},
		{"\\n alone", "a\nb", []string{"a"}, "b"},
		{"\\r inside a line", "ab\rc", nil, "abc"},
		{"empty lines", "\n\r\n\r", []string{"", ""}, ""},
		{"past Max", long + "yz\nnext", []string{long}, "next"},
		{"at Max", long + "\nnext", []string{long}, "next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Line
			var ended []string
			for _, c := range []byte(tt.in) {
				switch l.Add(c) {
				case Ended:
					ended = append(ended, string(l.Bytes()))
				case Skipped:
					if c != '\r' && len(l.Bytes()) < Max {
						t.Fatalf("byte %q skipped on the line %q", c, l.Bytes())
					}
				case Grew:
					if got := l.Bytes(); got[len(got)-1] != c {
						t.Fatalf("byte %q added, but the line is %q", c, got)
					}
				}
			}
			if strings.Join(ended, "|") != strings.Join(tt.ended, "|") || len(ended) != len(tt.ended) {
				t.Errorf("ended lines %q, want %q", ended, tt.ended)
			}
			if got := string(l.Bytes()); got != tt.last {
				t.Errorf("line being written %q, want %q", got, tt.last)
			}
		})
	}
}

// TestMatcher feeds console output and checks after which byte the ready
// pattern first matches: as the line grows, unless a match can end with
// an assertion on what follows ($, \z, \b, \B), which waits for the line's
// end (per top-level alternative); never on a line cut at Max.
func TestMatcher(t *testing.T) {
	tests := []struct {
		name, pattern, in string
		whole             bool
		at                string // the output up to the byte the first match came at ("": none)
	}{
		{"prompt without a newline", `login: `, "boot\r\nlogin: ", false, "boot\r\nlogin: "},
		{"anchored start", `^root on`, "boot\n\rroot on ld0a\n\r", false, "boot\n\rroot on"},
		{"$ on a longer line", `upper=13$`, "mem: lower=640 KiB upper=130048 KiB\r\n", true, ""},
		{"$ on a prefix of a line", `^mem: lower=6$`, "mem: lower=640 KiB\r\n", true, ""},
		{"$ on a port number's prefix", `port 80$`, "listening on port 8080\r\n", true, ""},
		{"$ at the line's end", `port 80$`, "listening on port 80\r\nnext", true, "listening on port 80\r\n"},
		{"$ under \\n\\r", `^port 80$`, "x\n\rport 80\n\r", true, "x\n\rport 80\n"},
		{"$ on a line never ended", `login: $`, "login: ", true, ""},
		{"(?m)$", `(?m)80$`, "8080x\n80\n", true, "8080x\n80\n"},
		{"\\z", `80\z`, "8080x\n", true, ""},
		{"\\b on a prefix", `\bport 80\b`, "port 8080\n", true, ""},
		{"\\b at a word's end", `\bport 80\b`, "port 80 up\n", true, "port 80 up\n"},
		{"\\B", `8\B`, "8\n88\n", true, "8\n88\n"},
		{"$ in one alternative, the other matched", `(a$|b)`, "xb\n", false, "xb"},
		{"$ in one alternative, it matched", `(a$|b)`, "xa\n", false, "xa\n"},
		{"$ in one alternative, too early", `(a$|b)`, "xab", false, "xab"},
		{"\\b at the start", `\blogin: `, "boot\r\nlogin: ", false, "boot\r\nlogin: "},
		{"\\b at the start, no boundary", `\blogin: `, "xlogin: ", false, ""},
		{"a prompt or a line's end", `login: |port 80$`, "boot\r\nlogin: ", false, "boot\r\nlogin: "},
		{"a prompt or a line's end, the end", `login: |port 80$`, "port 8080\nport 80\n", false, "port 8080\nport 80\n"},
		{"case-folded alternatives", `(?i)LOGIN: |port 80$`, "Login: ", false, "Login: "},
		{"$ then what may be empty", `80$\s*`, "8080 \n80\n", true, "8080 \n80\n"},
		{"$ then a repeat that may be empty", `port 80$x{0,2}`, "port 8080\nport 80\n", true, "port 8080\nport 80\n"},
		{"\\b then a repeat that may be empty", `port 80\b(?:x){0,2}`, "port 8080\nport 80\n", true, "port 8080\nport 80\n"},
		{"$ inside a group at the end", `port (80$)`, "port 8080\nport 80\n", true, "port 8080\nport 80\n"},
		{"\\b before text", `\bport\b 80`, "port 80", false, "port 80"},
		{"$ on a cut line", `port 80$`, strings.Repeat("x", Max-20) + "listening on port 8080\n", true, ""},
		{"$ on the line after a cut one", `port 80$`, strings.Repeat("x", Max+1) + "\nport 80\n", true, strings.Repeat("x", Max+1) + "\nport 80\n"},
		{"escaped $ is text", `cost \$5`, "cost $5 more", false, "cost $5"},
		{"$ in a class is text", `[$]`, "a$b", false, "a$"},
		{"^ alone", `^x`, "yx\nx", false, "yx\nx"},
		{"not across lines", `login: `, "log\r\nin: ", false, ""},
		{"a prompt sharing its start with a $", `\$ |\$$`, "boot\n# $ ", false, "boot\n# $ "},
		{"a prompt sharing its start with a $, the end", `\$ |\$$`, "$5\ncost $\n", false, "$5\ncost $\n"},
		{"login: or login: at the end", `login: |login:$`, "boot\r\nlogin: ", false, "boot\r\nlogin: "},
		{"login: or login: at the end, the end", `login: |login:$`, "login:x\nlogin:\n", false, "login:x\nlogin:\n"},
		{"login: or logout at the end", `login: |logout$`, "logout now\nlogin: ", false, "logout now\nlogin: "},
		// Half a UTF-8 character reads as U+FFFD, which the next byte may
		// undo: the line is matched without it until it is complete, or
		// whole once the line ends.
		{"half a character is not a non-letter", `ready\PL`, "ready\xc3\xa9\n", false, ""},
		{"half a character is not outside a class", `login:[^é]`, "ready login:\xc3\xa9\n", false, ""},
		{"a character that completes matches", `login:é`, "login:\xc3\xa9", false, "login:\xc3\xa9"},
		{"half a character at a line's end", `ready\PL`, "ready\xc3\n", false, "ready\xc3\n"},
		{"half a character then another byte", `ready\PL`, "ready\xc3x", false, "ready\xc3x"},
		{"half of a 4-byte character", `a\pS`, "a\xf0\x9f\x98\x80", false, "a\xf0\x9f\x98\x80"},
		{"half of a 4-byte character undone", `a[^\x{1F600}]`, "a\xf0\x9f\x98\x80\n", false, ""},
		{"a match before half a character", `login: `, "login: \xc3", false, "login: "},
		{"an invalid byte is whole", `x\x{FFFD}`, "x\xff", false, "x\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := regexp.MustCompile(tt.pattern)
			if got := WholeLines(re); got != tt.whole {
				t.Errorf("WholeLines(%q) = %v, want %v", tt.pattern, got, tt.whole)
			}
			m := NewMatcher(re)
			at := ""
			for i, c := range []byte(tt.in) {
				if m.Add(c) && at == "" {
					at = tt.in[:i+1]
				}
			}
			if at != tt.at {
				t.Errorf("first match after %q, want after %q", at, tt.at)
			}
		})
	}
	if NewMatcher(nil) != nil {
		t.Error("NewMatcher(nil) is not nil")
	}
}

// TestSplit checks which part of a pattern waits for the line's end: the
// alternatives a match of which can end with an assertion on what
// follows, wherever else an assertion stands.
func TestSplit(t *testing.T) {
	tests := []struct {
		pattern        string
		partial, whole string // "": no such part; "=": the pattern itself
		end            string // EndAssertion on no line
	}{
		{`login: `, "=", "", ""},
		{`login: $`, "", "=", "$"},
		{`^login: `, "=", "", ""},
		{`\blogin: `, "=", "", ""},
		{`\bport\b 80`, "=", "", ""},
		{`port 80\b`, "", "=", `\b`},
		{`8\B`, "", "=", `\B`},
		{`80\z`, "", "=", `\z`},
		{`(?m)80$`, "", "=", "$"},
		{`80$\s*`, "", "=", "$"},
		{`80$x?`, "", "=", "$"},
		{`(80$)+`, "", "=", "$"},
		{`80(?:$)`, "", "=", "$"},
		{`80$x`, "=", "", ""},
		{`cost \$5`, "=", "", ""},
		{`[$]`, "=", "", ""},
		{`login: |port 80$`, "login: ", "(?-m:port 80$)", "$"},
		{`(login: |port 80$)`, "(login: )", "(?-m:(port 80$))", "$"},
		{`ready (now|80$)`, "ready (now)", "(?-m:ready (80$))", "$"},
		{`a$|b$`, "", "=", "$"},
		{`a|b`, "=", "", ""},
		{`(a|b$)?`, "", "=", "$"},
		{`\$ |\$$`, `\$ `, `(?-m:\$$)`, "$"},
		{`login: |login:$`, "login: ", "(?-m:login:$)", "$"},
		{`login: |logout$`, "login: ", "(?-m:logout$)", "$"},
		{`login:( |$)`, "login:( )", "(?-m:login:($))", "$"},
		{`ready (now|later|$)`, "ready (now|later)", "(?-m:ready ($))", "$"},
		{`a(?:$|)`, "=", "", ""},
		{`(a|b$)(?:c|)`, "(a)", "(?-m:(b$))", "$"},
		{`80$(?:x|)`, "", "=", "$"},
		{`port 80$x{0,2}`, "", "=", "$"},
		{`port 80\b(?:x){0,2}`, "", "=", `\b`},
		{`a(?:b$|c\b)`, "", "=", "$"},
		{`a(?:b|$|c\b)`, "ab", `(?-m:ac\b|a$)`, `\b`},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			re := regexp.MustCompile(tt.pattern)
			p, w := Split(re)
			for _, part := range []struct {
				name string
				got  *regexp.Regexp
				want string
			}{{"partial", p, tt.partial}, {"whole", w, tt.whole}} {
				want := part.want
				if want == "=" {
					want = tt.pattern
				}
				got := ""
				if part.got != nil {
					got = part.got.String()
				}
				if got != want {
					t.Errorf("Split(%q) %s part %q, want %q", tt.pattern, part.name, got, want)
				}
			}
			if got := WholeLines(re); got != (tt.partial == "") {
				t.Errorf("WholeLines(%q) = %v", tt.pattern, got)
			}
			if got := EndAssertion(re, ""); got != tt.end {
				t.Errorf("EndAssertion(%q) = %q, want %q", tt.pattern, got, tt.end)
			}
		})
	}
}

// TestEndAssertion: the assertion named is the one ending the whole-line
// alternative that matches the unended line, as written.
func TestEndAssertion(t *testing.T) {
	tests := []struct{ pattern, line, want string }{
		{`login: $`, "login: ", "$"},
		{`done\b|login: $`, "login: ", "$"},
		{`login: $|done\b`, "done", `\b`},
		{`done\b|login: $`, "", `\b`},
		{`^\$ \z`, "$ ", `\z`},
		{`(?m)80$`, "80", "$"},
		{`port 80\b`, "port 80", `\b`},
		{`a \B`, "a ", `\B`},
		{`x(?:a$|b\b)`, "xb", `\b`},
		{`a(?:b|$|c\b)`, "ac", `\b`},
		{`a(?:b|$|c\b)`, "a", "$"},
		{`(a$|b\z)(?:x|)`, "b", `\z`},
		{`login: |port 80$`, "port 80", "$"},
		{`login: `, "login: ", ""},
		{`a(?:$|)`, "a", ""},
	}
	for _, tt := range tests {
		if got := EndAssertion(regexp.MustCompile(tt.pattern), tt.line); got != tt.want {
			t.Errorf("EndAssertion(%q, %q) = %q, want %q", tt.pattern, tt.line, got, tt.want)
		}
	}
}

// TestMatcherUnended: the line left unended is reported when the pattern's
// whole-line part would match it but for the line's end.
func TestMatcherUnended(t *testing.T) {
	tests := []struct{ pattern, in, want string }{
		{`login: $`, "boot\r\nxxxxlogin: ", "xxxxlogin: "},
		{`login: $`, "boot\r\nlogin: \r\n", ""},
		{`login: $`, "boot\r\nlog", ""},
		{`login: `, "boot\r\nlogin", ""},
		{`login: |port 80$`, "port 80", "port 80"},
		{`port 80$`, strings.Repeat("x", Max-7) + "port 8080", ""}, // kept: ...port 80
	}
	for _, tt := range tests {
		m := NewMatcher(regexp.MustCompile(tt.pattern))
		for _, c := range []byte(tt.in) {
			m.Add(c)
		}
		if got := m.Unended(); got != tt.want {
			t.Errorf("%q on %q: Unended() = %q, want %q", tt.pattern, tt.in, got, tt.want)
		}
	}
}

// TestSplitRandom checks Split on patterns drawn from a small grammar of
// text and assertions, against every line of a few bytes: a Matcher fires
// on a line exactly when the pattern matches the complete line, and its
// partial part never matches a line's start unless the pattern matches
// the complete line, whatever the line's end; EndAssertion names the
// assertion a line the whole-line part matches waits on.
func TestSplitRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var lines []string
	for n, set := 1, []string{""}; n <= 4; n++ {
		var next []string
		for _, s := range set {
			for _, c := range []string{"a", "b", " "} {
				next = append(next, s+c)
			}
		}
		lines, set = append(lines, next...), next
	}
	for range 2000 {
		pattern := randomPattern(rnd, 3)
		re, err := regexp.Compile(pattern)
		if err != nil {
			continue
		}
		p, w := Split(re)
		m := NewMatcher(re)
		named := false // EndAssertion checked on a line w matches
		for _, line := range lines {
			want := re.MatchString(line)
			if !named && w != nil && w.MatchString(line) {
				if EndAssertion(re, line) == "" {
					t.Fatalf("%q: its whole-line part %q matches %q, yet EndAssertion names no assertion", pattern, w, line)
				}
				named = true
			}
			fired := false
			for _, c := range []byte(line + "\n") {
				fired = m.Add(c) || fired
			}
			if fired != want {
				t.Fatalf("%q on the line %q: the Matcher fired %v, the pattern matches %v", pattern, line, fired, want)
			}
			for i := 1; p != nil && i <= len(line); i++ {
				if p.MatchString(line[:i]) && !want {
					t.Fatalf("%q: its partial part %q matches %q, the start of the line %q it does not match", pattern, p, line[:i], line)
				}
			}
		}
	}
}

// randomPattern is a pattern of text (a, b, space) and assertions, nested
// to depth.
func randomPattern(rnd *rand.Rand, depth int) string {
	atoms := []string{"a", "b", " ", "ab", "$", `\z`, `\b`, `\B`, "^", "(?m:$)", "(?:)"}
	var alts []string
	for range 1 + rnd.IntN(3) {
		var s strings.Builder
		for range 1 + rnd.IntN(3) {
			if depth > 0 && rnd.IntN(3) == 0 {
				s.WriteString([]string{"(", "(?:"}[rnd.IntN(2)] + randomPattern(rnd, depth-1) + ")")
			} else {
				s.WriteString(atoms[rnd.IntN(len(atoms))])
			}
			s.WriteString([]string{"", "", "", "?", "*", "+", "{0,2}", "{1,2}"}[rnd.IntN(8)])
		}
		alts = append(alts, s.String())
	}
	return strings.Join(alts, "|")
}
