package imagebuilder_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder"
)

// failingLog is a build log that takes its first ok bytes, then fails
// each write with ENOSPC (a log file on a full disk).
type failingLog struct {
	ok  int
	got strings.Builder
}

func (l *failingLog) Write(p []byte) (int, error) {
	if room := l.ok - l.got.Len(); room < len(p) {
		l.got.Write(p[:max(room, 0)])
		return max(room, 0), syscall.ENOSPC
	}
	return l.got.Write(p)
}

// A build log that fails is the log's failure, not the script's: the
// script runs to its end (its output still read), one that succeeded
// gives a *ScriptLogError naming the log, matching the log's error, whose
// detail is the output the log missed, and one that failed gives its
// *ScriptError with that output as its detail (Logged false). Before, the
// log's ENOSPC stopped the reading of the output, and a script that
// exited 0 was "postinst/10-ok.sh failed (...): no space left on device",
// Logged, so that its output was shown nowhere.
func TestPostinstLogFails(t *testing.T) {
	long := "i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done\n"
	for _, tc := range []struct {
		name, script string
		logOK        int    // bytes the log takes before it fails
		scriptFails  bool   // a *ScriptError is wanted, else a *ScriptLogError
		detailEnd    string // how the error's detail ends
	}{
		{name: "script succeeds", script: "echo hello\nexit 0\n", detailEnd: "hello\n"},
		{name: "script succeeds, 120 KB of output", script: long + "echo end\n", detailEnd: "end\n"},
		{name: "log fails midway", script: long + "echo end\n", logOK: 50000, detailEnd: "end\n"},
		{name: "script fails", script: "echo oops\nexit 3\n", scriptFails: true, detailEnd: "oops\n"},
		{name: "script fails after 120 KB of output", script: long + "echo oops\nexit 3\n", logOK: 100, scriptFails: true, detailEnd: "oops\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reachableTmp(t)
			dir := postinstService(t, map[string]string{"10-x.sh": tc.script})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			log := &failingLog{ok: tc.logOK}
			err := imagebuilder.RunPostinst(ctx, baseTree(t), loadService(t, "svc", dir), log)
			var se *imagebuilder.ScriptError
			var le *imagebuilder.ScriptLogError
			var detail string
			switch {
			case tc.scriptFails:
				if !errors.As(err, &se) || se.Logged || !strings.Contains(se.Err.Error(), "exit status 3") {
					t.Fatalf("RunPostinst: %v (%#v), want a ScriptError of exit status 3, not Logged", err, se)
				}
				detail = se.Detail()
			default:
				if errors.As(err, &se) || !errors.As(err, &le) || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("RunPostinst: %v, want a ScriptLogError matching ENOSPC and no ScriptError", err)
				}
				if msg := err.Error(); strings.Contains(msg, "failed") || !strings.Contains(msg, "log") || !strings.Contains(msg, "postinst/10-x.sh") {
					t.Errorf("error %q: want it to name the script and the log, and not call the script failed", msg)
				}
				detail = le.Detail()
			}
			if !strings.HasSuffix(detail, tc.detailEnd) {
				t.Errorf("detail ends %q, want it to end %q (the script's output to its end)", detail[max(len(detail)-60, 0):], tc.detailEnd)
			}
			if got := log.got.Len(); got != tc.logOK {
				t.Errorf("the log took %d bytes, want %d: it is written no more once it failed", got, tc.logOK)
			}
		})
	}
}
