package vmm

import (
	"bytes"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/smolvmm/smolvmm/internal/consoleline"
)

// maxLine bounds the console line kept for the ready pattern and the halt
// message.
const maxLine = consoleline.Max

// NetBSD's halt message: after it the kernel polls the UART forever and
// never executes HLT, so the machine ends the VM there.
const (
	haltMsg1 = "The operating system has halted."
	haltMsg2 = "Please press any key to reboot."
)

// consoleMatch says what a console byte completed: bits of matchHalt and
// matchReady.
type consoleMatch uint8

const (
	// matchHalt: the byte ended NetBSD's halt message (its second line,
	// on the line right after the first).
	matchHalt consoleMatch = 1 << iota
	// matchReady: the line so far matches the ready pattern (reported
	// once; on a long line, up to matchEvery bytes after the match), or
	// the line just ended does, for a pattern that sees whole lines.
	matchReady
)

// consoleWatch follows the guest's console output line by line for what
// the machine acts on: NetBSD's halt message and the Config.Ready pattern.
// Lines are split as consoleline does (the bench's too): a line ends at
// '\n' and '\r' is left out, so that ^ and $ anchor at the line's text
// whether the kernel ends lines "\n\r" or "\r\n". Patterns do not span
// lines, and a line is matched as it grows, so a prompt without a newline
// matches, but for the alternatives whose match can end with an assertion
// on what follows ($, \b: consoleline.Split): `port 80$` would match
// "port 8080" when the line holds "port 80", so those are matched once
// the line ends, and not on a line cut at consoleline.Max bytes.
// Matching the whole line at every byte costs as much as the
// line is long, so past eagerLine bytes a line is matched once every
// matchEvery bytes, when it ends, and when check is called: arm asks for
// that once bytes are left unmatched, and the machine calls it a moment
// later. Feed and check run on one goroutine (the vCPU thread); stopReady
// may be called from any.
type consoleWatch struct {
	ready   *regexp.Regexp   // the ready pattern's part matched as a line grows; nil: none
	whole   *regexp.Regexp   // its part matched against ended lines; nil: none
	noReady atomic.Bool      // ready was reported (here or by another source): stop matching
	line    consoleline.Line // the line being written
	// unmatched counts the bytes the line grew by since the ready
	// pattern was last matched against it, the last at unmatchedAt.
	unmatched   int
	unmatchedAt time.Time
	// arm, when set, asks for check to be called soon; armed: it was,
	// and check has not run since.
	arm   func()
	armed bool
	// halting: the line before this one was the halt message's first.
	// NetBSD prints the two back to back, with nothing between but the
	// line end (sys/arch/i386/i386/machdep.c:818-820,
	// amd64/amd64/machdep.c:752-754, at splhigh with the other CPUs
	// halted), so any other line between them cancels the first: a
	// later line ending as the second then ends nothing.
	halting bool
}

// A line up to eagerLine bytes long is matched at every byte (without a
// character it ends partway through: consoleline.Line.Settled); past that,
// once every matchEvery bytes (and when it ends or check runs), which
// bounds the matching a byte costs whatever the line's length.
const (
	eagerLine  = 128
	matchEvery = 256
)

func newConsoleWatch(ready *regexp.Regexp) *consoleWatch {
	w := &consoleWatch{}
	w.ready, w.whole = consoleline.Split(ready)
	return w
}

// feed takes the next byte the guest wrote and reports what it completed.
func (w *consoleWatch) feed(b byte) consoleMatch {
	switch w.line.Add(b) {
	case consoleline.Ended:
		line := w.line.Bytes()
		w.halting = bytes.HasSuffix(line, []byte(haltMsg1))
		if w.whole != nil && !w.line.Cut() && w.matchPattern(w.whole, line) != 0 {
			return matchReady
		}
		// Its last bytes were not matched yet: past eagerLine, or a
		// character the line ended partway through (Settled).
		if w.unmatched > 0 || consoleline.Unfinished(line) > 0 {
			return w.matchReady(line)
		}
		return 0
	case consoleline.Skipped:
		return 0 // the line is as it was: nothing new to match
	}
	line := w.line.Bytes()
	var got consoleMatch
	if b == '.' { // both halt lines end with a period
		// The second line on the line after the first, or right after
		// it when no line end came between them.
		if w.halting && bytes.HasSuffix(line, []byte(haltMsg2)) || bytes.HasSuffix(line, []byte(haltMsg1+haltMsg2)) {
			got |= matchHalt
		}
	}
	if w.ready != nil && !w.noReady.Load() {
		if len(line) <= eagerLine || w.unmatched+1 >= matchEvery {
			got |= w.matchReady(w.line.Settled())
		} else {
			w.unmatched++
			w.unmatchedAt = time.Now()
			if !w.armed && w.arm != nil {
				w.armed = true
				w.arm()
			}
		}
	}
	return got
}

// matchReady matches the ready pattern's partial part against line,
// reporting the first match once.
func (w *consoleWatch) matchReady(line []byte) consoleMatch {
	w.unmatched = 0
	return w.matchPattern(w.ready, line)
}

// matchPattern matches re, a part of the ready pattern, against line,
// reporting the first match of either part once.
func (w *consoleWatch) matchPattern(re *regexp.Regexp, line []byte) consoleMatch {
	if re == nil || w.noReady.Load() || !re.Match(line) {
		return 0
	}
	w.noReady.Store(true)
	return matchReady
}

// unended is the line the guest is writing when the ready pattern's
// whole-line part would match it but for waiting for its end (a prompt
// matched with $); "" otherwise, or once ready. Call it on the goroutine
// that feeds, or once feeding is over.
func (w *consoleWatch) unended() string {
	if w.noReady.Load() {
		return ""
	}
	return consoleline.Unended(w.whole, &w.line)
}

// check matches the line's bytes feed left unmatched, for output that
// stopped (a prompt) on a long line. It reports whether the ready pattern
// matched, and the time the last of those bytes came: the match was
// complete then, if not before.
func (w *consoleWatch) check() (bool, time.Time) {
	w.armed = false
	if w.unmatched == 0 {
		return false, time.Time{}
	}
	return w.matchReady(w.line.Settled()) != 0, w.unmatchedAt
}

// stopReady ends the ready matching: the machine is ready already.
func (w *consoleWatch) stopReady() { w.noReady.Store(true) }

// ReadyUnended is the console line the guest left unended, when the Ready
// pattern's part that waits for a line's end (its alternatives that can
// end with $, \z, \b or \B: consoleline.Split) would have matched it as it
// stood: a prompt, which never ends its line, matched with $. It is "" when
// there is no such line or the machine became ready. Call it after Run
// returns.
func (m *Machine) ReadyUnended() string {
	if m.watch == nil {
		return ""
	}
	return m.watch.unended()
}
