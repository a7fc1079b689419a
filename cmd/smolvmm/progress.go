package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// byteBar is the bar fetch and mkimg draw: what, the bytes done of the
// total and, once a second has passed, the rate of the bytes that arrived
// since the bar appeared. The library's own rate divides every byte the bar
// holds (a resumed download's earlier ones included) by the first
// milliseconds, and started at "12 GB/s".
type byteBar struct {
	bar   *progressbar.ProgressBar
	what  string
	total int64
	base  int64 // bytes already there when the bar was made
	done  int64
	start time.Time
	now   func() time.Time
}

// newProgressBar draws a bar of total bytes on w, starting at have, cleared
// when finished. A total < 0 is unknown (no Content-Length): the library's
// bar of unknown length (-1) then spins.
func newProgressBar(w io.Writer, what string, total, have int64) *byteBar {
	if total < 0 {
		total = -1
	}
	b := &byteBar{what: what, total: total, base: have, done: have, now: time.Now}
	b.start = b.now()
	b.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(b.describe()),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	if have > 0 {
		b.bar.Set64(have)
	}
	return b
}

// describe is what, the bytes done (of the total, when known) and, after
// a second, the rate.
func (b *byteBar) describe() string {
	s := fmt.Sprintf("%s %s of %s", b.what, humanBytes(b.done), humanBytes(b.total))
	if b.total < 0 {
		s = fmt.Sprintf("%s %s received", b.what, humanBytes(b.done))
	}
	if el := b.now().Sub(b.start); el >= time.Second {
		s += fmt.Sprintf(", %s/s", humanBytes(int64(float64(b.done-b.base)/el.Seconds())))
	}
	return s
}

// Set64 moves the bar to n bytes done.
func (b *byteBar) Set64(n int64) {
	b.done = n
	b.bar.Describe(b.describe())
	b.bar.Set64(n)
}

// Write counts p's bytes as done, for io.MultiWriter.
func (b *byteBar) Write(p []byte) (int, error) {
	b.Set64(b.done + int64(len(p)))
	return len(p), nil
}

// Finish completes and clears the bar.
func (b *byteBar) Finish() error { return b.bar.Finish() }

// Close ends the bar where it stands (a failed download leaves no bar).
func (b *byteBar) Close() error { return b.bar.Close() }
