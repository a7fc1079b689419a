package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/exepages"
	"github.com/smolvmm/smolvmm/vmm"
)

// dropExecutablePages makes the VMM give up its mappings of the smolvmm
// executable once the guest runs (internal/exepages): the package
// initialisers, the flag parsing and the set-up ran once, and without this
// their pages (mapped 64 KiB at a time by the kernel's fault around) stay
// in the VMM's resident set for its whole life. The pages stay in the page
// cache; the vCPU loop and the devices map back what they use. It happens
// on a goroutine of its own, beside the guest's first instructions rather
// than before them (it takes ~0.5 ms), on a thread at the lowest priority.
// It is skipped under a debugger, whose breakpoints in the code it would
// undo.
//
// It happens twice: when the guest starts to run, then releaseAgainAfter
// later (or when the guest ends, if sooner and settled is set). The first
// comes before Run's own set-up is over (the console's reader, the
// context's watch, the vCPU loop's goroutines and their first stack
// growths), which maps back ~2-3 MiB that a running VM does not run again
// (measured: a spinning guest held 6.9 MiB with one drop, 3.6 MiB with
// two).
//
// settled, when set, is called once that is over, done or not: with ""
// when the executable was unmapped, else why it stayed mapped. The
// returned wait joins the goroutine (it ends at once if the guest never
// ran); call it when Run has returned or New failed, once or more.
func dropExecutablePages(cfg *vmm.Config, verbose bool, settled func(mappedWhy string)) (wait func()) {
	checked := make(chan struct{}) // /proc read, before the filter forbids it
	start, cancel, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	// What -v says of it, once it is over: formatted and printed by
	// wait, not while the guest's console is being written, nor after a
	// drop, whose formatting code would map back (fmt, strconv).
	var tracedBy string
	var released uintptr
	var releaseErr error
	go func() {
		defer close(done)
		mappedWhy := "the guest never ran"
		if settled != nil {
			defer func() { settled(mappedWhy) }()
		}
		// The guest comes first: on a busy or single-CPU host the release
		// yields to it. The thread is never unlocked, so it ends with this
		// goroutine rather than serving others at the lowest priority;
		// but the main thread cannot end (the runtime parks it for good
		// instead), so there the release runs at the usual priority and
		// the thread is given back.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			defer runtime.UnlockOSThread()
		} else {
			_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
		}
		tracer := tracerPID()
		close(checked)
		if releaseHook != nil {
			releaseHook(cancel)
		}
		select {
		case <-start:
		case <-cancel:
		}
		// Both may be closed by now: on a busy host this thread, at the
		// lowest priority, can wake only after a short guest has ended,
		// and select chooses at random. Run is over then: no release,
		// unless a bench waits for settled to read this VM's memory (it
		// would count the set-up code, as of no VM that runs on).
		ended := false
		select {
		case <-cancel:
			select {
			case <-start:
				mappedWhy = "the guest ended before the release ran"
			default:
				return
			}
			if settled == nil {
				return
			}
			ended = true
		default:
		}
		if tracer != "" {
			tracedBy = tracer
			mappedWhy = "traced by PID " + tracer
			return
		}
		if released, releaseErr = releasePages(); releaseErr != nil {
			mappedWhy = releaseErr.Error()
			return
		}
		mappedWhy = ""
		if ended {
			return
		}
		// Again once Run's set-up is over; a failure here leaves what the
		// first drop did. A guest that ends first (the demo's, in 40 ms)
		// needs no second drop on the way out, unless a bench waits for
		// settled to read this VM's memory: it would count the code that
		// ran the ending (~2 MiB), not what a VM keeps while it runs.
		select {
		case <-cancel:
			if settled != nil {
				_, _ = releasePages()
			}
		case <-time.After(releaseAgainAfter):
			_, _ = releasePages()
		}
	}()
	prev := cfg.BeforeRun
	cfg.BeforeRun = func() error {
		<-checked
		if prev != nil {
			if err := prev(); err != nil {
				return err
			}
		}
		close(start)
		return nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(cancel)
			<-done
			if verbose {
				if said := releaseSaid(tracedBy, released, releaseErr); said != "" {
					fmt.Fprintf(os.Stderr, "smolvmm: %s\n", said)
				}
			}
		})
		<-done
	}
}

// releaseSaid is what -v says of the release: traced by tracer, else
// released bytes unmapped, else why not (err); "" when none ran.
func releaseSaid(tracer string, released uintptr, err error) string {
	switch {
	case tracer != "":
		return "traced by PID " + tracer + ": the executable stayed mapped"
	case err != nil:
		return fmt.Sprintf("the executable stayed mapped: %v", err)
	case released > 0:
		return fmt.Sprintf("unmapped the executable's %.1f MiB of code and read-only data once the guest ran; the pages it ran again mapped back", float64(released)/(1<<20))
	}
	return ""
}

// releaseAgainAfter is how long after the guest started to run the
// executable is unmapped a second time: Run's set-up (a few ms) is over
// by then, and no guest waits on it (a thread at the lowest priority).
var releaseAgainAfter = time.Second

// releasePages is exepages.Release (tests count the calls).
var releasePages = exepages.Release

// releaseHook, when set (by tests), runs on the release goroutine before
// it waits for the guest to run or the wait to be called, given the
// channel the wait closes.
var releaseHook func(cancel <-chan struct{})

// tracerPID is the PID of the process tracing this one ("" when none, or
// when /proc cannot say).
// releaseDaemonPages is dropExecutablePages for the shared network's
// daemon, once its hub listens: package initialisation and the network
// stack's set-up mapped ~11 MiB of the executable that the daemon, which
// lives as long as the VMs that join it, does not run again, and that no
// VM shares any more (each drops its own). It runs before the daemon says
// it listens (~0.5 ms; no guest waits on it). logf, when set, says why it
// did not happen; false means it will not happen later either.
func releaseDaemonPages(logf func(string, ...any)) bool {
	return releaseUntraced(tracerPID(), logf)
}

// releaseUntraced is releaseDaemonPages for a process traced by pid ("":
// none).
func releaseUntraced(pid string, logf func(string, ...any)) bool {
	if pid != "" {
		if logf != nil {
			logf("traced by PID %s: the executable stayed mapped", pid)
		}
		return false
	}
	if _, err := exepages.Release(); err != nil {
		if logf != nil {
			logf("the executable stayed mapped: %v", err)
		}
		return false
	}
	return true
}

func tracerPID() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	return tracerIn(b)
}

// tracerIn is the tracer's PID that status, /proc/self/status's content,
// gives, or "" for none.
func tracerIn(b []byte) string {
	_, rest, ok := bytes.Cut(b, []byte("\nTracerPid:"))
	if !ok {
		return ""
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	if pid := string(bytes.TrimSpace(line)); pid != "0" {
		return pid
	}
	return ""
}
