package bench

import (
	"errors"
	"io"
	"testing"
)

// failingWriter fails every write after the first ok bytes with err.
type failingWriter struct {
	ok  int
	err error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.ok >= len(p) {
		w.ok -= len(p)
		return len(p), nil
	}
	n := w.ok
	w.ok = 0
	return n, w.err
}

// Both reports return the writer's error (a full disk, a closed pipe),
// whether it fails at the first line or part-way: a report that says
// nothing of it would leave an embedder a truncated file and no error.
func TestWriteTextReportsWriteError(t *testing.T) {
	full := errors.New("no space left on device")
	par := &ParallelResults{Schema: ParallelSchemaVersion, N: 2, Host: Host{CPUs: 2}, Config: Config{Net: "none"}, VMs: []VM{
		{Index: 0, StartMS: 0.5, FirstOutputMS: 10, ReadyMS: 10},
		{Index: 1, StartMS: 0.6, Error: "boom"},
	}}
	par.aggregate()
	reports := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"ParallelResults", par.WriteText},
		{"Results", fakeResults(t).WriteText},
	}
	for _, r := range reports {
		for _, ok := range []int{0, 40} {
			if err := r.write(&failingWriter{ok: ok, err: full}); !errors.Is(err, full) {
				t.Errorf("%s.WriteText to a writer failing after %d bytes: %v, want %v", r.name, ok, err, full)
			}
		}
	}
}
