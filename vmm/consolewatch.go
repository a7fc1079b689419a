package vmm

import (
	"bytes"
	"regexp"
	"sync/atomic"
)

// maxLine bounds the console line kept for the ready pattern and the halt
// message.
const maxLine = 4096

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
	// once).
	matchReady
)

// consoleWatch follows the guest's console output line by line for what
// the machine acts on: NetBSD's halt message and the Config.Ready pattern.
// A line ends at '\n' (NetBSD sends "\n\r", so its lines start with '\r');
// patterns do not span lines, and a line is matched as it grows, so a
// prompt without a newline matches. Feed runs on one goroutine (the vCPU
// thread); stopReady may be called from any.
type consoleWatch struct {
	ready   *regexp.Regexp // nil: no ready pattern
	noReady atomic.Bool    // ready was reported (here or by another source): stop matching
	line    []byte         // the line being written, at most maxLine bytes
	// halting: the line before this one was the halt message's first.
	// NetBSD prints the two back to back, with nothing between but the
	// line end (sys/arch/i386/i386/machdep.c:818-820,
	// amd64/amd64/machdep.c:752-754, at splhigh with the other CPUs
	// halted), so any other line between them cancels the first: a
	// later line ending as the second then ends nothing.
	halting bool
}

func newConsoleWatch(ready *regexp.Regexp) *consoleWatch {
	return &consoleWatch{ready: ready}
}

// feed takes the next byte the guest wrote and reports what it completed.
func (w *consoleWatch) feed(b byte) consoleMatch {
	if b == '\n' {
		// The line end is "\r\n" (9.x's cnputc) or "\n\r" (older).
		w.halting = bytes.HasSuffix(bytes.TrimRight(w.line, "\r"), []byte(haltMsg1))
		w.line = w.line[:0]
		return 0
	}
	if len(w.line) == maxLine {
		return 0 // the line is full: nothing new to match
	}
	w.line = append(w.line, b)
	var got consoleMatch
	if b == '.' { // both halt lines end with a period
		// The second line on the line after the first, or right after
		// it when no line end came between them.
		if w.halting && bytes.HasSuffix(w.line, []byte(haltMsg2)) || bytes.HasSuffix(w.line, []byte(haltMsg1+haltMsg2)) {
			got |= matchHalt
		}
	}
	if w.ready != nil && !w.noReady.Load() && w.ready.Match(w.line) {
		w.noReady.Store(true)
		got |= matchReady
	}
	return got
}

// stopReady ends the ready matching: the machine is ready already.
func (w *consoleWatch) stopReady() { w.noReady.Store(true) }
