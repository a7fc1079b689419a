package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBrokenStderrWhileRaw: a run on a terminal whose standard error's
// reader has gone away ends of SIGPIPE, status 141, when a line written
// there while the terminal is raw fails, and leaves the terminal as it
// found it: the loader's notes of what a NetBSD kernel is not given, and
// Ctrl-A s's answer when there is no snapshot file. Those lines were
// written past the record of a broken output the console ends the
// process on: their EPIPE was lost, and the silent guest ran on.
func TestBrokenStderrWhileRaw(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	netbsd := filepath.Join(t.TempDir(), "netbsd")
	// A silent NetBSD kernel: "-s" without console= gets a note, as
	// does its lack of a symbol table.
	if err := os.WriteFile(netbsd, netbsdELF(3, []byte{0xEB, 0xFE}), 0o644); err != nil { // jmp $
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		keys string // typed once it runs
	}{
		{"loader notes", []string{"-k", netbsd, "-a", "-s"}, ""},
		{"loader notes, --no-seccomp", []string{"-k", netbsd, "-a", "-s", "--no-seccomp"}, ""},
		{"C-a s without --snapshot", []string{"-k", spinKernel(t)}, "\x01s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ptm, pts := openPTYPair(t)
			before := termiosOf(t, pts)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			cmd := exec.Command(smolvmmBin(t), append([]string{"run", "-m", "16", "--net", "none"}, tt.args...)...)
			var stdout lockedBuffer // contain_test.go
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, &stdout, w
			waited := startReaped(t, cmd) // console_pipe_test.go
			w.Close()
			if tt.keys != "" {
				waitRaw(t, pts, &stdout) // typed once the console reads them
				if _, err := ptm.Write([]byte(tt.keys)); err != nil {
					t.Fatal(err)
				}
			}
			wantSIGPIPE(t, exitWithin(t, waited, "a line met a closed standard error", &stdout), &stdout)
			if after := termiosOf(t, pts); !bytes.Equal(termiosBytes(&after), termiosBytes(&before)) {
				t.Errorf("terminal left as %+v, want as it was: %+v", after, before)
			}
		})
	}
}

// TestStderrNotefRecordsBrokenPipe: a shared network's notice (lost,
// rejoined) that fails with EPIPE, its standard error's reader gone, is
// recorded for the console to end the process with 141, as the -v log's
// writes are (rawLogWriter): the notices wrote past the record.
func TestStderrNotefRecordsBrokenPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	saved, savedRecord := os.Stderr, brokenOut
	os.Stderr, brokenOut = w, &pipeRecord{broken: make(chan struct{})}
	t.Cleanup(func() { os.Stderr, brokenOut = saved, savedRecord })
	stderrNotef()("network %s lost", "shared")
	select {
	case <-brokenOut.broken:
	default:
		t.Fatal("the notice's EPIPE was not recorded")
	}
	if got := brokenOut.File(); got != w {
		t.Errorf("recorded %v, want standard error", got)
	}
}
