package fetch

import (
	"bytes"
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
)

// progressFails is a Progress writer that fails from its write number
// failAt (1 first) on: with err, or with a short write when err is nil.
type progressFails struct {
	failAt, writes int
	err            error
	closed         bool
}

func (p *progressFails) Write(b []byte) (int, error) {
	if p.writes++; p.writes < p.failAt {
		return len(b), nil
	}
	if p.err == nil {
		return len(b) / 2, nil
	}
	return 0, p.err
}

func (p *progressFails) Close() error { p.closed = true; return nil }

// A Progress writer is a display, not the download: its failure (a
// progress bar's terminal gone: EPIPE) neither fails the download nor is
// called a failure to write the cache's .part file, it is written no
// more after it, and Note is told of it once. A Progress that returns nil
// means no progress writer. Before, the writer's EPIPE failed Fetch as
// "write .../netbsd-GENERIC.gz.part: broken pipe", and a nil writer made
// Fetch panic.
func TestFetchProgressFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writer *progressFails // nil: Progress returns nil
		writes int            // writes it is to see
	}{
		{name: "first write fails", writer: &progressFails{failAt: 1, err: syscall.EPIPE}, writes: 1},
		{name: "second write fails", writer: &progressFails{failAt: 2, err: syscall.EPIPE}, writes: 2},
		{name: "short write", writer: &progressFails{failAt: 1}, writes: 1},
		{name: "nil writer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f := setup(t)
			f.Progress = func(name string, total, have int64) io.WriteCloser {
				switch {
				case name != KernelName:
					return &recorder{}
				case tc.writer == nil:
					return nil // not a nil *progressFails in an interface
				}
				return tc.writer
			}
			var notes []string
			f.Note = func(msg string) { notes = append(notes, msg) }
			rel, err := f.Fetch(context.Background(), "9.3", "i386")
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if !bytes.Equal(mustRead(t, rel.Kernel.Path), testKernel) {
				t.Errorf("the cached kernel differs from the mirror's")
			}
			if tc.writer == nil {
				if len(notes) > 0 {
					t.Errorf("notes %q, want none", notes)
				}
				return
			}
			if tc.writer.writes != tc.writes || !tc.writer.closed {
				t.Errorf("the progress writer saw %d writes (closed %v), want %d, then Close", tc.writer.writes, tc.writer.closed, tc.writes)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], "progress writer") || !strings.Contains(notes[0], KernelName) || strings.Contains(notes[0], ".part") {
				t.Errorf("notes %q, want one naming the progress writer of %s", notes, KernelName)
			}
		})
	}
}
