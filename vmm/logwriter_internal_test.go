package vmm

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// gateWriter blocks its first Write until open is closed, and records
// every message.
type gateWriter struct {
	open    chan struct{}
	entered chan struct{}
	got     syncBuilder
}

func (w *gateWriter) Write(p []byte) (int, error) {
	select {
	case <-w.entered:
	default:
		close(w.entered)
		<-w.open
	}
	return w.got.Write(p)
}

// TestLogWriterKeepsOrderDropsWhenFull: messages reach Config.Log in the
// order they were logged; those that find the queue full, Log being
// stalled, are dropped, and a message says how many, where they were
// (before the next message that fits, or alone once Log takes them).
// Nothing that logs waits for Log.
func TestLogWriterKeepsOrderDropsWhenFull(t *testing.T) {
	w := &gateWriter{open: make(chan struct{}), entered: make(chan struct{})}
	l := newLogWriter(w, nil)
	l.put([]byte("first\n"))
	<-w.entered // Write holds the first message
	msg := strings.Repeat("x", 1000) + "\n"
	fit := logQueueLimit / len(msg)
	// Log stays stalled until the puts return: one that waited for it
	// would never return.
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for i := range fit + 5 {
			l.put([]byte(fmt.Sprintf("%04d%s", i, msg[4:])))
		}
		l.put([]byte("after\n")) // small enough to fit: after the note
	}()
	select {
	case <-logged:
	case <-time.After(20 * time.Second):
		close(w.open)
		t.Fatal("logging to a stalled Log waited for it")
	}
	close(w.open)
	l.Close()
	got := w.got.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	want := append([]string{"first"}, make([]string, fit)...)
	for i := range fit {
		want[1+i] = fmt.Sprintf("%04d", i)
	}
	want = append(want, "smolvmm: 5 log messages dropped", "after")
	if len(lines) != len(want) {
		t.Fatalf("%d lines logged, want %d:\n%.300s...", len(lines), len(want), got)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d is %.60q, want it to start %q", i, lines[i], w)
		}
	}
}

// TestLogWriterStalledIsLeft: a Log whose Write never returns holds Close
// stopDrainTime once the machine is stopped, no longer.
func TestLogWriterStalledIsLeft(t *testing.T) {
	w := &gateWriter{open: make(chan struct{}), entered: make(chan struct{})}
	defer close(w.open)
	l := newLogWriter(w, nil)
	l.put([]byte("stalls\n"))
	<-w.entered
	l.Stop()
	start := time.Now()
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(stopDrainTime + 20*time.Second):
		t.Fatalf("Close still waits for the stalled Log %v after the stop", stopDrainTime+20*time.Second)
	}
	if d := time.Since(start); d < stopDrainTime/2 || d > 2*stopDrainTime+2*time.Second {
		t.Errorf("Close took %v, want about %v", d, stopDrainTime)
	}
	l.put([]byte("later\n")) // dropped, not waited for
}

// TestLogWriterCutsLongMessage: a message longer than the queue holds is
// cut to fit, saying how many bytes were cut, and written. Before, it was
// dropped without waking the goroutine, so flush, which Run and New end
// with, waited for ever for the note of the drop.
func TestLogWriterCutsLongMessage(t *testing.T) {
	for _, n := range []int{logQueueLimit + 1, 3 * logQueueLimit} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var got syncBuilder
			l := newLogWriter(&got, nil)
			waitAsleep(t, &l.asyncWriter)
			l.put([]byte(strings.Repeat("x", n-1) + "\n"))
			flushed := make(chan struct{})
			go func() { l.flush(untilStopped); close(flushed) }()
			select {
			case <-flushed:
			case <-time.After(10 * time.Second):
				t.Fatal("flush did not return within 10s of a message too long")
			}
			l.Close()
			s := got.String()
			if len(s) > logQueueLimit {
				t.Errorf("%d bytes written, want at most %d", len(s), logQueueLimit)
			}
			kept := strings.Count(s, "x")
			want := fmt.Sprintf(" [smolvmm: %d bytes of this message cut]\n", n-kept)
			if kept < logQueueLimit/2 || !strings.HasSuffix(s, want) {
				t.Errorf("written %d bytes of the message, ending %q; want it cut, ending %q", kept, s[max(0, len(s)-80):], want)
			}
		})
	}
}

// TestLogWriterDropWakes: a drop wakes the goroutine, which writes the
// note of it even with nothing else queued; flush waits for that note.
// The queue is counted full with nothing in it, the one state where the
// goroutine sleeps as a message is dropped (a message too long to fit
// was, before it was cut).
func TestLogWriterDropWakes(t *testing.T) {
	var got syncBuilder
	l := newLogWriter(&got, nil)
	waitAsleep(t, &l.asyncWriter)
	l.mu.Lock()
	l.queued = logQueueLimit
	l.mu.Unlock()
	l.put([]byte("dropped\n"))
	flushed := make(chan struct{})
	go func() { l.flush(untilStopped); close(flushed) }()
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("flush did not return within 10s of a drop")
	}
	l.Close()
	if s := got.String(); !strings.HasPrefix(s, "smolvmm: 1 log messages dropped") {
		t.Errorf("written %q, want the note of 1 message dropped", s)
	}
}

// waitAsleep waits until w's goroutine sleeps in its wait for something
// to write (sync.Cond.Wait): a message put after that wakes it, or is
// never written.
func waitAsleep(t *testing.T, w *asyncWriter) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if id := w.gid.Load(); id != 0 {
			head := fmt.Sprintf("goroutine %d [sync.Cond.Wait", id)
			if strings.Contains(string(buf[:runtime.Stack(buf, true)]), head) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer's goroutine did not wait for messages within 10s")
		}
	}
}
