package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unnotifyChildEnv makes the test binary TestUnnotifySendsFatalAgain's
// child: the signal's number.
const unnotifyChildEnv = "SMOLVMM_TEST_UNNOTIFY"

// TestUnnotifySendsFatalAgain: when raw mode fails, a fatal signal
// openConsole caught before it is Go's default again, as it would have
// been without the console (SIGQUIT and SIGABRT end the process with a
// stack dump, status 2; a SIGPIPE sent by another process is ignored),
// where it would otherwise be lost in a channel no one reads.
func TestUnnotifySendsFatalAgain(t *testing.T) {
	if v := os.Getenv(unnotifyChildEnv); v != "" {
		unnotifyChild(t, v)
		return
	}
	tests := []struct {
		sig   syscall.Signal
		ends  bool
		trace string
	}{
		{unix.SIGQUIT, true, "SIGQUIT: quit"},
		{unix.SIGABRT, true, "SIGABRT: abort"},
		{unix.SIGPIPE, false, ""},
	}
	for _, tt := range tests {
		t.Run(unix.SignalName(tt.sig), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestUnnotifySendsFatalAgain$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", unnotifyChildEnv, int(tt.sig)))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			switch {
			case tt.ends && (!errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tt.trace)):
				t.Errorf("child: %v, want status 2 of Go's %s; output:\n%s", err, tt.trace, out)
			case !tt.ends && (err != nil || !strings.Contains(string(out), "still running")):
				t.Errorf("child: %v, want it to go on; output:\n%s", err, out)
			}
		})
	}
}

// unnotifyChild catches signal v as openConsole does, has it sent, and
// undoes the catch as openConsole does when raw mode fails.
func unnotifyChild(t *testing.T, v string) {
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil {
		t.Fatal(err)
	}
	sig := syscall.Signal(n)
	c := &console{fatal: make(chan os.Signal, len(fatalSignals)), cont: make(chan os.Signal, 1)}
	signal.Notify(c.fatal, fatalSignals...)
	signal.Notify(c.cont, unix.SIGCONT)
	if err := unix.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); len(c.fatal) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v not caught in 20 s", sig)
		}
	}
	c.unnotify()
	// A signal sent again ends the process long before this; one
	// ignored leaves it running.
	wait := time.Second
	if sig != unix.SIGPIPE {
		wait = 30 * time.Second
	}
	time.Sleep(wait)
	fmt.Println("still running")
}
