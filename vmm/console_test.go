package vmm

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowWriter records what it gets, slowly, and can fail.
type slowWriter struct {
	mu     sync.Mutex
	got    bytes.Buffer
	writes int
	delay  time.Duration
	fail   bool
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.fail {
		return 0, errors.New("console gone")
	}
	return w.got.Write(p)
}

func TestConsoleWriter(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		n     int
		fail  bool
	}{
		{"fast", 0, 10000, false},
		{"slow console batches bytes", 2 * time.Millisecond, 3000, false},
		{"beyond the buffer waits instead of dropping", 0, 3 * consoleBufferSize, false},
		{"failing console does not block the guest", 0, 5000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &slowWriter{delay: tt.delay, fail: tt.fail}
			c := newConsoleWriter(w, nil)
			var want bytes.Buffer
			for i := 0; i < tt.n; i++ {
				b := []byte{byte('a' + i%26)}
				want.Write(b)
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			c.Flush()
			w.mu.Lock()
			got, writes := w.got.String(), w.writes
			w.mu.Unlock()
			if !tt.fail && got != want.String() {
				t.Fatalf("console got %d bytes, want %d in order", len(got), want.Len())
			}
			if tt.delay > 0 && writes >= tt.n/2 {
				t.Errorf("%d writes for %d bytes: output is not batched", writes, tt.n)
			}
			c.Close()
			if _, err := c.Write([]byte("x")); err == nil {
				t.Error("Write after Close succeeded")
			}
		})
	}
}

// stuckWriter never returns from Write until released, like a pipe whose
// reader paused; it reports the size of each write it holds on took.
type stuckWriter struct {
	release chan struct{}
	took    chan int
}

func (w stuckWriter) Write(p []byte) (int, error) {
	select {
	case w.took <- len(p):
	default: // only the first is looked at
	}
	<-w.release
	return len(p), nil
}

// TestConsoleWriterStop: with a console that stopped reading, a guest
// writing past the buffer waits, having had exactly the buffer accepted
// beyond what the console holds; Stop frees it, and Close returns after
// stopDrainTime instead of hanging.
func TestConsoleWriterStop(t *testing.T) {
	w := stuckWriter{release: make(chan struct{}), took: make(chan int, 1)}
	defer close(w.release)
	c := newConsoleWriter(w, nil)
	held := make(chan int, 1) // the buffer's length when Write first waits
	c.full = func() {
		select {
		case held <- len(c.buf):
		default:
		}
	}
	var accepted atomic.Int64
	guest := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := c.Write([]byte{'x'}); err != nil {
				t.Error(err)
				return
			}
			accepted.Add(1)
		}
	}
	// One byte first, and the console goroutine takes it and sticks, so
	// that what it holds is known.
	guest(1)
	if n := <-w.took; n != 1 {
		t.Fatalf("the console took %d bytes, want the 1 written", n)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		guest(3 * consoleBufferSize)
	}()
	select {
	case n := <-held:
		if n != consoleBufferSize {
			t.Errorf("Write waits with %d bytes buffered, want the buffer's %d", n, consoleBufferSize)
		}
	case <-wrote:
		t.Fatal("the guest wrote three buffers' worth into a console that reads nothing")
	}
	// Write is waiting (full was called under the lock Wait releases);
	// the guest goroutine counts a byte only after its Write returns.
	if got := accepted.Load(); got != 1+consoleBufferSize {
		t.Errorf("the guest got %d bytes accepted before waiting, want 1 held by the console and %d buffered", got, consoleBufferSize)
	}
	c.Stop()
	select {
	case <-wrote:
	case <-time.After(20 * time.Second):
		t.Fatal("Write still blocked after Stop")
	}
	if got := accepted.Load(); got != 1+3*consoleBufferSize {
		t.Errorf("after Stop the guest got %d bytes accepted, want all %d (dropped, not refused)", got, 1+3*consoleBufferSize)
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(stopDrainTime + 20*time.Second):
		t.Fatal("Close hung on a stalled console after Stop")
	}
	if d := time.Since(start); d < stopDrainTime/2 {
		t.Errorf("Close returned after %v: it should give the console about %v to drain", d, stopDrainTime)
	}
}

// gatedWriter counts the bytes handed to each Write as it starts, then
// holds the Write until release closes, and counts them again as it ends.
type gatedWriter struct {
	started atomic.Int64
	ended   atomic.Int64
	took    chan struct{} // gets a value at each Write's start
	release chan struct{}
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.started.Add(int64(len(p)))
	select {
	case w.took <- struct{}{}:
	default:
	}
	<-w.release
	w.ended.Add(int64(len(p)))
	return len(p), nil
}

// TestConsoleWriterFinish: at Run's end the console is flushed for a guest
// that ended by itself; for a stopped one what is queued is dropped, the
// chunk in flight is waited for (at most stopDrainTime for a stalled
// console, and Close then does not wait again), and no Write to the
// console starts afterwards. (After Stop, Run's Flush returned at once and
// the writer went on writing the queue after Run returned.)
func TestConsoleWriterFinish(t *testing.T) {
	const queued = 100
	tests := []struct {
		name        string
		stop, stall bool
		want        int64 // bytes handed to the console's Writes, in all
	}{
		{"guest ended: all written", false, false, 1 + queued},
		{"stopped: queue dropped, chunk in flight waited for", true, false, 1},
		{"stopped, stalled console: given up after stopDrainTime", true, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &gatedWriter{took: make(chan struct{}, 1), release: make(chan struct{})}
			c := newConsoleWriter(w, nil)
			var once sync.Once
			release := func() { once.Do(func() { close(w.release) }) }
			defer release()
			// One byte that the console takes and holds, then more
			// queued behind it.
			c.Write([]byte{'x'})
			<-w.took
			for range queued {
				c.Write([]byte{'y'})
			}
			if tt.stop {
				c.Stop()
			}
			if !tt.stall {
				// The console takes the chunk once Finish waits for it
				// (a Finish that does not wait is caught below).
				go func() {
					if waitForConsoleStack(10*time.Second, "sync.Cond.Wait", "vmm.(*consoleWriter).Finish(") {
						release()
					}
				}()
			}
			start := time.Now()
			c.Finish()
			took := time.Since(start)
			if got := w.started.Load(); got != tt.want {
				t.Errorf("the console was handed %d bytes by Finish's return, want %d", got, tt.want)
			}
			switch {
			case tt.stall && took < stopDrainTime/2:
				t.Errorf("Finish returned after %v on a stalled console: it should wait about %v", took, stopDrainTime)
			case !tt.stall && w.ended.Load() != tt.want:
				t.Errorf("Finish returned with %d of the %d bytes the console was handed written: before the chunk in flight was", w.ended.Load(), tt.want)
			}
			c.Write([]byte("late"))
			start = time.Now()
			c.Close()
			if d := time.Since(start); d > stopDrainTime/2 {
				t.Errorf("Close after Finish took %v", d)
			}
			// Once the writer goroutine has returned no Write can
			// start: what it was handed by then is all it ever is.
			release()
			select {
			case <-c.done:
			case <-time.After(20 * time.Second):
				t.Fatal("the console's writer goroutine did not return after Close")
			}
			if got := w.started.Load(); got != tt.want {
				t.Errorf("the console was handed %d bytes after Finish, want still %d", got, tt.want)
			}
		})
	}
}

// BenchmarkConsoleByte is the vCPU thread's cost per console byte: a write
// system call per byte straight to a file, against queueing it for the
// console goroutine.
func BenchmarkConsoleByte(b *testing.B) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	p := []byte{'x'}
	b.Run("direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			null.Write(p)
		}
	})
	b.Run("queued", func(b *testing.B) {
		c := newConsoleWriter(null, nil)
		for i := 0; i < b.N; i++ {
			c.Write(p)
		}
		c.Close()
	})
}

// TestConsoleWriterCloseJoins: unless the VM was stopped, Close returns
// only once the writer goroutine has. Without the wait every other test
// passed: their goroutine checks give a goroutine seconds to go.
func TestConsoleWriterCloseJoins(t *testing.T) {
	tests := []struct {
		name  string
		write []byte // written before Close
	}{
		{"nothing written", nil},
		{"output written", []byte("boot\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The goroutine, woken by Close, returns within moments of
			// it: rounds make a Close that does not wait fail every time.
			for range 20 {
				w := &slowWriter{}
				c := newConsoleWriter(w, nil)
				if tt.write != nil {
					if _, err := c.Write(tt.write); err != nil {
						t.Fatal(err)
					}
				}
				c.Close()
				if !isClosed(c.done) {
					t.Fatal("Close returned before the writer goroutine did")
				}
			}
		})
	}
}

// waitForConsoleStack waits, at most d, for a goroutine in state (the
// bracketed status of a stack dump, such as "[sync.Cond.Wait") with frame
// in its stack, and reports whether one was seen.
func waitForConsoleStack(d time.Duration, state, frame string) bool {
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(d); !time.Now().After(deadline); time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, " ["+state) && strings.Contains(g, frame) {
				return true
			}
		}
	}
	return false
}
