package vmm

import (
	"regexp"
	"strings"
	"testing"
)

// TestConsoleWatch feeds console output, in the writes given, and checks
// at which bytes of it the halt message and the ready pattern are
// reported.
func TestConsoleWatch(t *testing.T) {
	const halt = "The operating system has halted.\n\rPlease press any key to reboot.\n\r\n\r"
	long := strings.Repeat("x", maxLine)
	tests := []struct {
		name   string
		ready  string // the ready pattern ("" for none)
		writes []string
		// The output up to and including the byte each report came at.
		halt, readyAt string
	}{
		{name: "NetBSD's halt, lines ending \\n\\r", writes: []string{"boot\n\r", halt},
			halt: "boot\n\rThe operating system has halted.\n\rPlease press any key to reboot."},
		{name: "halt with \\r\\n", writes: []string{"\r\nThe operating system has halted.\r\nPlease press any key to reboot.\r\n"},
			halt: "\r\nThe operating system has halted.\r\nPlease press any key to reboot."},
		{name: "halt text split over writes", writes: []string{"The operating sys", "tem has halted", ".\n", "\rPlease press any key to", " reboot", "."},
			halt: "The operating system has halted.\n\rPlease press any key to reboot."},
		{name: "halt text one byte a write", writes: strings.Split(halt, ""),
			halt: "The operating system has halted.\n\rPlease press any key to reboot."},
		{name: "second line alone", writes: []string{"Please press any key to reboot.\n\r"}},
		{name: "first line alone", writes: []string{"The operating system has halted.\n\r", "login: "}},
		// The first line need only have been seen before the second.
		{name: "halt lines run together", writes: []string{"The operating system has halted.Please press any key to reboot."},
			halt: "The operating system has halted.Please press any key to reboot."},
		// NetBSD prints the second line right after the first: a
		// line between them cancels the first (before, it stayed armed
		// for good and any later line ending as the second stopped the
		// VM as halted).
		{name: "a line between the halt lines", writes: []string{"The operating system has halted.\r\nsomething else\r\nPlease press any key to reboot.\r\n"}},
		{name: "an empty line between the halt lines", writes: []string{"The operating system has halted.\r\n\r\nPlease press any key to reboot.\r\n"}},
		{name: "second line much later", writes: []string{"\r\nThe operating system has halted.\r\n", "login: root\r\n", "# echo 'Please press any key to reboot.'\r\n"}},
		{name: "first line with more after it", writes: []string{"The operating system has halted. Not.\r\nPlease press any key to reboot.\r\n"}},
		{name: "text between the lines run together", writes: []string{"The operating system has halted. Please press any key to reboot."}},
		{name: "first line again, then the second", writes: []string{"The operating system has halted.\r\nx\r\nThe operating system has halted.\r\n", "Please press any key to reboot.\r\n"},
			halt: "The operating system has halted.\r\nx\r\nThe operating system has halted.\r\nPlease press any key to reboot."},
		{name: "line end split over writes", writes: []string{"The operating system has halted.\r", "\n", "Please press any key to reboot."},
			halt: "The operating system has halted.\r\nPlease press any key to reboot."},
		{name: "halt text inside a longer line", writes: []string{"echo 'The operating system has halted.'\n\r"}},
		{name: "halt past a full line", writes: []string{"The operating system has halted.\n\r" + long + "Please press any key to reboot.\n\r"}},

		{name: "ready prompt without newline", ready: `login: `, writes: []string{"boot...\n\r", "login: "},
			readyAt: "boot...\n\rlogin: "},
		{name: "ready pattern split over writes", ready: `login: `, writes: []string{"boot...\n\rlog", "in", ": ", "\n\r"},
			readyAt: "boot...\n\rlogin: "},
		{name: "ready pattern split over lines", ready: `login: `, writes: []string{"log\n\rin: "}},
		{name: "ready reported once", ready: `login: `, writes: []string{"login: \n\rlogin: "},
			readyAt: "login: "},
		// '\r' is no part of a line, whichever side of the '\n' it
		// comes: anchored patterns match as under the bench (the
		// 5.99.15 kernel ends its lines "\n\r", and '\r' once started
		// each line, so ^ never matched there).
		{name: "anchored at the start, lines ending \\n\\r", ready: `^root on ld0a`, writes: []string{"boot device: ld0\n\rroot on ld0a dumps on ld0b\n\r"},
			readyAt: "boot device: ld0\n\rroot on ld0a"},
		{name: "anchored at the start, lines ending \\r\\n", ready: `^root on ld0a`, writes: []string{"boot device: ld0\r\nroot on ld0a dumps on ld0b\r\n"},
			readyAt: "boot device: ld0\r\nroot on ld0a"},
		// $ (and \b) depend on what follows: such a pattern is matched
		// once a line has ended, without its line end.
		{name: "anchored at both ends, lines ending \\n\\r", ready: `^login: $`, writes: []string{"boot\n\r", "login: \n\r"},
			readyAt: "boot\n\rlogin: \n"},
		{name: "anchored at both ends, lines ending \\r\\n", ready: `^login: $`, writes: []string{"boot\r\n", "login: \r\n"},
			readyAt: "boot\r\nlogin: \r\n"},
		{name: "$ on a prompt that never ends its line", ready: `root device: $`, writes: []string{"boot\n\rroot device: "}},
		{name: "prompt without $", ready: `root device: `, writes: []string{"boot\n\rroot device: "},
			readyAt: "boot\n\rroot device: "},
		{name: "$ on a prefix of a longer line", ready: `upper=13$`, writes: []string{"mem: lower=640 KiB upper=130048 KiB\r\n"}},
		{name: "anchored at both ends on a prefix", ready: `^mem: lower=6$`, writes: []string{"mem: lower=640 KiB upper=130048 KiB\r\n"}},
		{name: "$ on a longer port", ready: `port 80$`, writes: []string{"listening on port 8080\r\n"}},
		{name: "$ at the line's end", ready: `port 80$`, writes: []string{"listening on port 8080\r\n", "listening on port 80\r\n"},
			readyAt: "listening on port 8080\r\nlistening on port 80\r\n"},
		{name: "\\b on a longer word", ready: `port 80\b`, writes: []string{"port 8080\r\n"}},
		{name: "\\r inside a line is left out", ready: `^abc$`, writes: []string{"ab\rc\n"}, readyAt: "ab\rc\n"},
		// A line cut at maxLine ends elsewhere than its kept text:
		// $ matches neither there nor at the cut.
		{name: "$ on a cut line", ready: `x$`, writes: []string{long, "yz\n"}},
		{name: "$ on a cut line's kept end", ready: `port 80$`, writes: []string{strings.Repeat("x", maxLine-20), "listening on port 8080\n"}},
		{name: "$ on a full line, not cut", ready: `x$`, writes: []string{long, "\n"}, readyAt: long + "\n"},
		// An assertion that something else follows leaves the
		// pattern matched as the line grows; so does an alternative
		// without one.
		{name: "\\b at the start of a prompt", ready: `\blogin: `, writes: []string{"boot\r\nlogin: "}, readyAt: "boot\r\nlogin: "},
		{name: "a prompt or a line's end, the prompt", ready: `login: |port 80$`, writes: []string{"boot\r\nlogin: "}, readyAt: "boot\r\nlogin: "},
		{name: "a prompt or a line's end, the line", ready: `login: |port 80$`, writes: []string{"port 8080\r\n", "port 80\r\n"}, readyAt: "port 8080\r\nport 80\r\n"},
		{name: "ready past a full line", ready: `login: `, writes: []string{long, "login: "}},
		{name: "ready on the line after a full one", ready: `login: `, writes: []string{long, "\nlogin: "},
			readyAt: long + "\nlogin: "},

		// Half a UTF-8 character reads as U+FFFD, which the next
		// byte may undo: it is matched once complete, or at the
		// line's end.
		{name: "half a character is not a non-letter", ready: `ready\PL`, writes: []string{"ready\xc3", "\xa9\n"}},
		{name: "half a character is not outside a class", ready: `login:[^é]`, writes: []string{"ready login:\xc3\xa9\n"}},
		{name: "a character that completes", ready: `login:é`, writes: []string{"login:\xc3", "\xa9"}, readyAt: "login:\xc3\xa9"},
		{name: "half a character at a line's end", ready: `ready\PL`, writes: []string{"ready\xc3\n"}, readyAt: "ready\xc3\n"},
		{name: "half a character on a long line", ready: `ready\PL`, writes: []string{strings.Repeat("x", 300) + "ready\xc3\xa9\n"}},
		{name: "half a character on a long line's end", ready: `ready\PL`, writes: []string{strings.Repeat("x", 300) + "ready\xc3\n"},
			readyAt: strings.Repeat("x", 300) + "ready\xc3\n"},

		{name: "halt and a pattern it matches", ready: `reboot\.`, writes: []string{halt},
			halt: "The operating system has halted.\n\rPlease press any key to reboot.", readyAt: "The operating system has halted.\n\rPlease press any key to reboot."},
		{name: "halt before the ready pattern", ready: `login: `, writes: []string{halt},
			halt: "The operating system has halted.\n\rPlease press any key to reboot."},
		{name: "ready pattern before halt", ready: `halted`, writes: []string{halt},
			halt: "The operating system has halted.\n\rPlease press any key to reboot.", readyAt: "The operating system has halted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var re *regexp.Regexp
			if tt.ready != "" {
				re = regexp.MustCompile(tt.ready)
			}
			w := newConsoleWatch(re)
			var out, halts, readies []byte
			nHalt, nReady := 0, 0
			for _, s := range tt.writes {
				for _, b := range []byte(s) {
					out = append(out, b)
					got := w.feed(b)
					if got&matchHalt != 0 {
						nHalt++
						halts = append(halts[:0], out...)
					}
					if got&matchReady != 0 {
						nReady++
						readies = append(readies[:0], out...)
					}
				}
			}
			if want := len(tt.halt); want > 0 && nHalt != 1 || want == 0 && nHalt != 0 || string(halts) != tt.halt {
				t.Errorf("halt reported %d times, last after %q; want after %q", nHalt, halts, tt.halt)
			}
			if want := len(tt.readyAt); want > 0 && nReady != 1 || want == 0 && nReady != 0 || string(readies) != tt.readyAt {
				t.Errorf("ready reported %d times, last after %q; want after %q", nReady, readies, tt.readyAt)
			}
		})
	}
}

// TestConsoleWatchStopReady: once the machine is ready by another source
// (the boot-timer port, ReadyAddr), the pattern is no longer matched.
func TestConsoleWatchStopReady(t *testing.T) {
	w := newConsoleWatch(regexp.MustCompile(`login: `))
	for _, b := range []byte("boot\n\rlog") {
		if got := w.feed(b); got != 0 {
			t.Fatalf("feed(%q) = %v before the pattern", b, got)
		}
	}
	w.stopReady()
	for _, b := range []byte("in: \n\rlogin: ") {
		if got := w.feed(b); got != 0 {
			t.Fatalf("feed(%q) = %v after stopReady", b, got)
		}
	}
}

// TestConsoleWatchLongLine: past eagerLine bytes a line is not matched at
// every byte, but the ready pattern is still found: when the line ends, at
// the next matchEvery bytes, or, for output that stops there (a prompt
// without a newline), by check, which feed arms once.
func TestConsoleWatchLongLine(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name, ready, out string
		// fed: the output after which feed reports ready ("" for
		// none); checked: check then reports it.
		fed     string
		checked bool
	}{
		{name: "prompt without newline after a long line", ready: `login: `, out: long + "login: ", checked: true},
		{name: "$ on a long line never ended", ready: `login: $`, out: long + "login: "},
		{name: "$ on a long line, reported at its end", ready: `login: $`, out: long + "login: \n", fed: long + "login: \n"},
		{name: "match on a long line, reported at its end", ready: `(?i)ready\s+on\s+port\s+\d+`, out: long + "ready on port 80\n",
			fed: long + "ready on port 80\n"},
		{name: "match on a long line, reported within matchEvery bytes", ready: `ready`, out: long + "ready" + strings.Repeat("y", 2*matchEvery),
			fed: long + "ready" + strings.Repeat("y", nextMatch(len(long+"ready"))-len(long+"ready"))},
		{name: "no match on a long line", ready: `login: `, out: long + "logout"},
		{name: "half a character on a long line", ready: `ready\PL`, out: long + "ready\xc3"},
		{name: "prompt on a short line after a long one", ready: `^login: `, out: long + "\n\rlogin: ", fed: long + "\n\rlogin: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newConsoleWatch(regexp.MustCompile(tt.ready))
			arms := 0
			w.arm = func() { arms++ }
			var out []byte
			fed := ""
			for _, b := range []byte(tt.out) {
				out = append(out, b)
				if w.feed(b)&matchReady != 0 {
					if fed != "" {
						t.Fatalf("ready reported twice, after %q and %q", fed, out)
					}
					fed = string(out)
				}
			}
			if fed != tt.fed {
				t.Errorf("feed reported ready after %q, want after %q", fed, tt.fed)
			}
			if w.armed && arms != 1 {
				t.Errorf("arm called %d times, want once before check", arms)
			}
			ok, at := w.check()
			if ok != tt.checked {
				t.Errorf("check = %v, want %v", ok, tt.checked)
			}
			if ok && at.IsZero() {
				t.Error("check matched without the time of the last byte")
			}
			if ok, _ := w.check(); ok {
				t.Error("check reported ready twice")
			}
		})
	}
}

// nextMatch is the length, at least n, at which a line longer than
// eagerLine is next matched as it grows.
func nextMatch(n int) int {
	k := (n - eagerLine + matchEvery - 1) / matchEvery
	return eagerLine + k*matchEvery
}

// BenchmarkConsoleWatch is the cost of a console byte on long lines, with
// a ready pattern that never matches (ns/op is per byte).
func BenchmarkConsoleWatch(b *testing.B) {
	line := []byte(strings.Repeat("0123456789abcdef", maxLine/16-1) + "\r\n")
	w := newConsoleWatch(regexp.MustCompile(`(?i)ready\s+on\s+port\s+\d+`))
	w.arm = func() {}
	b.SetBytes(1)
	b.ResetTimer()
	for i := range b.N {
		w.feed(line[i%len(line)])
		if w.armed && i%1024 == 0 {
			w.check()
		}
	}
}

// TestConsoleWatchUnended: the line left unended is reported when the ready
// pattern's whole-line part would match it but for its end.
func TestConsoleWatchUnended(t *testing.T) {
	tests := []struct{ ready, out, want string }{
		{`login: $`, "boot\r\nxxxxlogin: ", "xxxxlogin: "},
		{`login: $`, "boot\r\nlogin: \r\n", ""},
		{`login: `, "boot\r\nlogin", ""},
		{`login: $`, "boot\r\nlogout", ""},
	}
	for _, tt := range tests {
		w := newConsoleWatch(regexp.MustCompile(tt.ready))
		for _, b := range []byte(tt.out) {
			w.feed(b)
		}
		if got := w.unended(); got != tt.want {
			t.Errorf("%q on %q: unended() = %q, want %q", tt.ready, tt.out, got, tt.want)
		}
	}
}
