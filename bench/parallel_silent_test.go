package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A --parallel restore whose guest prints nothing is started at its ready
// report, with a ready pattern or without one, and its memory is read
// with the others'; it has no first output. Every such VM once stayed
// not started until the timeout. A boot that prints nothing is still
// not started, its guest's boot-timer report or not.
func TestRunParallelSilentRestore(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restore bool
		ready   *regexp.Regexp
		started int
	}{
		{"restore, no pattern", true, nil, 2},
		{"restore, pattern", true, regexp.MustCompile("^login: "), 2},
		{"boot, no pattern", false, nil, 0},
		{"boot, pattern", false, regexp.MustCompile("^login: "), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := RunParallel(context.Background(), silentTarget(t, tt.restore), ParallelOptions{N: 2, Timeout: 5 * time.Second,
				Ready: tt.ready, SettleTimeout: 3 * time.Second, Config: Config{Kernel: "fake", MemoryMiB: 20}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Started != tt.started {
				t.Fatalf("started %d of 2, want %d: %+v", res.Started, tt.started, res.VMs)
			}
			for _, v := range res.VMs {
				if tt.started == 0 {
					if !strings.Contains(v.Error, "not started within") {
						t.Errorf("vm %d: error %q, want it not started within the timeout", v.Index, v.Error)
					}
					continue
				}
				if v.FirstOutputMS != 0 || v.ReadyMS <= v.StartMS {
					t.Errorf("vm %d: start %.3f, first output %.3f, ready %.3f ms: want ready after the start and no first output",
						v.Index, v.StartMS, v.FirstOutputMS, v.ReadyMS)
				}
				// Started at its report, which it wrote before it ran for
				// fakeDelay: the quiet wait is not in its time.
				if d := v.ReadyMS - v.StartMS; d > float64(restoreQuietWait/time.Millisecond) {
					t.Errorf("vm %d: ready %.1f ms after its start: timed at the end of the wait, not at its report", v.Index, d)
				}
				if v.Memory == nil || v.Memory.GuestRSSKiB < fakeTouched>>10 {
					t.Errorf("vm %d: memory %+v (%s): want guest RSS at least %d KiB", v.Index, v.Memory, v.MemoryError, fakeTouched>>10)
				}
			}
		})
	}
}

// A --parallel restore that ends after its ready report, printing
// nothing, before the wait for its first byte passed, did not start; one
// still running then started at its report.
func TestParallelSilentRestoreReport(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ended bool
		want  int64
	}{
		{"ended", true, 0},
		{"running", false, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], 200)
			w.Write(b[:])
			w.Close()
			consoleDone := make(chan struct{})
			if tt.ended {
				close(consoleDone)
			}
			v := &parallelVM{restore: true, readyIn: r, consoleDone: consoleDone, giveUp: make(chan struct{}), settled: make(chan int, 1)}
			v.readReport()
			if v.ready != tt.want {
				t.Errorf("ready %d, want %d", v.ready, tt.want)
			}
		})
	}
}

// A VM found gone when it was to be measured says what it was started
// at: its first console byte, or, for a silent restore, its ready report
// (it printed no byte to be "after").
func TestParallelGoneAfterStart(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first int64
		want  string
	}{
		{"printed", 100, endedAfterReady},
		{"silent restore", 0, endedAfterReport},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := &parallelVM{first: tt.first, ready: 200, gone: true, end: &vmEnd{status: "exit status 2"}}
			if got := v.result(0, time.Second).Error; got != "exit status 2 "+tt.want {
				t.Errorf("error %q, want %q", got, "exit status 2 "+tt.want)
			}
		})
	}
}

// A --parallel restore started silently at its report, after the quiet
// wait, that prints before the bench has stopped it (here: while the
// bench waits for it to settle) keeps no first output: its start was its
// report, and a first output after its ready is out of order. Such VMs
// were once written with that byte's time, and ReadParallelResults
// refused what RunParallel wrote.
func TestParallelSilentRestoreLateOutput(t *testing.T) {
	old := restoreQuietWait
	restoreQuietWait = fakeDelay / 4 // it prints fakeDelay after its report
	defer func() { restoreQuietWait = old }()
	target := withReport(fakeTarget(t, "fake", "vmmreadytouch"))
	target.ReadyFlag, target.ReadyReported, target.SettledFlag = "-ready-fd", true, "-settled-fd"
	res, err := RunParallel(context.Background(), target, ParallelOptions{N: 1, Timeout: 5 * time.Second,
		SettleTimeout: 4 * fakeDelay, Config: Config{Kernel: "fake", MemoryMiB: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Started != 1 {
		t.Fatalf("started %d of 1: %+v", res.Started, res.VMs)
	}
	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadParallelResults(&buf); err != nil {
		t.Fatalf("ReadParallelResults of what RunParallel wrote: %v", err)
	}
}

// readConsole times a VM's first byte, but not one printed after the VM
// was started silently at its report: that VM has no first output.
func TestParallelReadConsoleAfterSilentStart(t *testing.T) {
	for _, tt := range []struct {
		name      string
		ready     int64 // the VM's ready (its start) before the byte
		wantFirst bool
	}{
		{"not started", 0, true},
		{"started silently at its report", 200, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := &parallelVM{restore: true, ready: tt.ready, giveUp: make(chan struct{}), settled: make(chan int, 1)}
			v.readConsole(strings.NewReader("resumed\r\n"), nil)
			if got := v.first != 0; got != tt.wantFirst {
				t.Errorf("first output %d, want one: %v", v.first, tt.wantFirst)
			}
			if tt.ready != 0 && v.ready != tt.ready {
				t.Errorf("ready %d, want it kept at %d", v.ready, tt.ready)
			}
		})
	}
}
