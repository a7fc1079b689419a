package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/term"
)

// stdout is the process's standard output as every command writes it
// (the App's Writer, a guest's console, the bench's table): it keeps the
// first write error, which run turns into status 1 with one line, so that
// output lost to a full disk (>/dev/full) or a descriptor not open for
// writing is not a silent success. A broken pipe ends the process with
// SIGPIPE instead (status 141, as for any program): Go's runtime ends it
// before the write returns, or, while a console has the terminal raw and
// so asks for the signal (console.go: watch), the write returns EPIPE,
// kept here, and the console ends the process with 141 once it has put
// the terminal back. Not seen here is a standard output closed at the
// start (>&-): Go's runtime opens /dev/null there before main, as systemd
// does for a service's discarded output, and the two cannot be told
// apart.
var stdout = &outWriter{w: os.Stdout}

// outWriter is w, keeping the first write error.
type outWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (o *outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		brokenOut.note(o.w, err)
		o.mu.Lock()
		if o.err == nil {
			o.err = err
		}
		o.mu.Unlock()
	}
	return n, err
}

// isTerminal reports whether w writes to a terminal, through the
// outWriter that wraps standard output.
func isTerminal(w io.Writer) bool {
	if o, ok := w.(*outWriter); ok {
		w = o.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// brokenOut is the record of a write to standard output or error that
// failed with EPIPE (its reader went away), for the console to end the
// process of SIGPIPE on (console.go: watch): a write's own answer, where
// poll cannot tell (a socket whose peer shut down reading shows neither
// POLLERR nor POLLHUP) nor say whose write raised a SIGPIPE.
var brokenOut = &pipeRecord{broken: make(chan struct{})}

// pipeRecord keeps the first standard output or error whose write
// failed with EPIPE, and closes broken then.
type pipeRecord struct {
	once   sync.Once
	file   atomic.Pointer[os.File]
	broken chan struct{}
}

// note records w if it is standard output or error and err is EPIPE.
func (r *pipeRecord) note(w io.Writer, err error) {
	f, ok := w.(*os.File)
	if !ok || (f != os.Stdout && f != os.Stderr) || !errors.Is(err, syscall.EPIPE) {
		return
	}
	r.once.Do(func() {
		r.file.Store(f)
		close(r.broken)
	})
}

// stderrOut is standard error for the command's own lines that a
// console may find its terminal raw for (the loader's notices, a shared
// network's): a write that fails with EPIPE is recorded in brokenOut,
// for the console to end the process with 141, as Go's runtime would
// were the console not asking for SIGPIPE. It writes to os.Stderr as it
// is at the write.
var stderrOut io.Writer = stderrWriter{}

// stderrWriter is stderrOut's type.
type stderrWriter struct{}

func (stderrWriter) Write(p []byte) (int, error) {
	f := os.Stderr
	n, err := f.Write(p)
	brokenOut.note(f, err)
	return n, err
}

// File is the standard output or error recorded broken, or nil.
func (r *pipeRecord) File() *os.File { return r.file.Load() }

// Err is the first write error, or nil.
func (o *outWriter) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// reported forgets err, the first write error, once the command has said
// it in an error of its own (kstrip: the kernel was written, only its
// summary lost), so that run does not say it again without the context.
func (o *outWriter) reported(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == err {
		o.err = nil
	}
}

// stdoutError is the error for output lost to err: what happened to
// standard output and what to do about it.
func stdoutError(err error) error {
	var advice string
	switch {
	case errors.Is(err, syscall.EBADF):
		return &fileError{"writing standard output: it is not open for writing (redirect it to a file, or to /dev/null to discard it)", err}
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		advice = "free some space, or redirect the output elsewhere"
	default:
		advice = "redirect the output elsewhere"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &fileError{fmt.Sprintf("writing standard output: %v (%s)", err, advice), err}
}
