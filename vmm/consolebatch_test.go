package vmm

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter counts the Writes it gets and keeps their bytes.
type countingWriter struct {
	mu     sync.Mutex
	got    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.got.Write(p)
}

// TestConsoleWriterBatchesStream: a guest printing byte by byte, as the
// UART hands them over, costs the console at most one write per
// consoleGap (and one per consoleChunk queued), not one per byte or two.
// The bytes come at a KVM exit's pace: faster, they would pile up while
// the console writes, and be batched anyway.
func TestConsoleWriterBatchesStream(t *testing.T) {
	const (
		n    = 20000
		exit = 20 * time.Microsecond // a UART byte's KVM exit, roughly
	)
	w := &countingWriter{}
	c := newConsoleWriter(w, nil)
	defer c.Close()
	var want bytes.Buffer
	start := time.Now()
	for i := range n {
		b := []byte{byte('a' + i%26)}
		want.Write(b)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		for t0 := time.Now(); time.Since(t0) < exit; {
		}
	}
	c.Flush()
	elapsed := time.Since(start)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.got.String() != want.String() {
		t.Fatalf("the console got %d bytes, want the %d written, in order", w.got.Len(), n)
	}
	// Writes start consoleGap apart, but for the first, those of a
	// full chunk and Flush's.
	limit := n/consoleChunk + int(elapsed/consoleGap) + 2
	if w.writes > limit {
		t.Errorf("%d writes for %d single bytes in %v (%.1f bytes each), want at most %d", w.writes, n, elapsed, float64(n)/float64(w.writes), limit)
	}
}

// chanWriter sends a copy of what each Write gets on got.
type chanWriter struct{ got chan string }

func (w chanWriter) Write(p []byte) (int, error) {
	w.got <- string(p)
	return len(p), nil
}

// receive returns what the console writes next, failing after d.
func (w chanWriter) receive(t *testing.T, d time.Duration, what string) string {
	t.Helper()
	select {
	case s := <-w.got:
		return s
	case <-time.After(d):
		t.Fatalf("%s: nothing reached the console in %v", what, d)
		return ""
	}
}

// holdingConsole returns a console whose writer waits an hour between
// writes while output streams, so that only what should not wait for
// the gap reaches w within a test.
func holdingConsole(w chanWriter) *consoleWriter {
	c := newConsoleWriter(w, nil)
	c.mu.Lock()
	c.gap = time.Hour
	c.mu.Unlock()
	return c
}

// TestConsoleWriterFirstByteAtOnce: a byte after a quiet moment (the
// boot's first, an echo) is written at once, alone, not held for more.
func TestConsoleWriterFirstByteAtOnce(t *testing.T) {
	w := chanWriter{got: make(chan string, 16)}
	c := holdingConsole(w)
	defer c.Close()
	for _, b := range []string{"a", "b", "c"} {
		if _, err := c.Write([]byte(b)); err != nil {
			t.Fatal(err)
		}
		if got := w.receive(t, 10*time.Second, "a byte after quiet"); got != b {
			t.Fatalf("the console wrote %q, want %q", got, b)
		}
		// The gap passes with nothing written.
		c.Flush()
		c.mu.Lock()
		c.last = c.last.Add(-c.gap)
		c.mu.Unlock()
	}
}

// TestConsoleWriterEndsHold: what the writer holds while output streams is
// written at once, all of it, by Flush, Finish and Close, and once the
// machine is stopped; none waits out the gap between writes.
func TestConsoleWriterEndsHold(t *testing.T) {
	const queued = 1000 // less than consoleChunk, which goes out at once
	tests := []struct {
		name string
		end  func(c *consoleWriter)
	}{
		{"Flush", (*consoleWriter).Flush},
		{"Finish", (*consoleWriter).Finish},
		{"Close", (*consoleWriter).Close},
		{"Stop", (*consoleWriter).Stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := chanWriter{got: make(chan string, queued+2)}
			c := holdingConsole(w)
			defer c.Close()
			c.Write([]byte{'x'})
			if got := w.receive(t, 10*time.Second, "the first byte"); got != "x" {
				t.Fatalf("the console wrote %q first, want %q", got, "x")
			}
			for range queued {
				c.Write([]byte{'y'})
			}
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				tt.end(c)
			}()
			// One write, not one per byte (nor the wait of an hour).
			if got, want := w.receive(t, 10*time.Second, tt.name), strings.Repeat("y", queued); got != want {
				t.Errorf("after the first byte the console wrote %d bytes, want the %d queued, together", len(got), queued)
			}
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not return", tt.name)
			}
		})
	}
}
