package main

import (
	"os"
	"testing"
)

// countingReader returns its chunks one per Read and counts the calls.
type countingReader struct {
	chunks []string
	reads  int
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.reads++
	if len(r.chunks) == 0 {
		return 0, nil
	}
	n := copy(p, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

// TestEscapeReaderReadsOnce: each Read reads stdin once, even when all it
// got was an escape (the VM polls stdin and calls Read only when it has
// data: a second read would block with no VM left to use it), and File
// gives the VM stdin to poll.
func TestEscapeReaderReadsOnce(t *testing.T) {
	tests := []struct {
		chunk, want string
	}{
		{"\x01h", ""},
		{"\x01", ""},
		{"a\x01\x01", "a\x01"},
	}
	for _, tt := range tests {
		src := &countingReader{chunks: []string{tt.chunk, "more"}}
		r := &escapeReader{r: src, quit: func() bool { return true }}
		buf := make([]byte, 16)
		n, err := r.Read(buf)
		if err != nil || string(buf[:n]) != tt.want || src.reads != 1 {
			t.Errorf("%q: Read = %q, %v after %d reads of stdin; want %q after one", tt.chunk, buf[:n], err, src.reads, tt.want)
		}
	}
	if f := (&escapeReader{r: os.Stdin}).File(); f != os.Stdin {
		t.Errorf("File() = %v, want os.Stdin", f)
	}
	if f := (&escapeReader{r: &countingReader{}}).File(); f != nil {
		t.Errorf("File() of a reader that is no file = %v, want nil", f)
	}
}
