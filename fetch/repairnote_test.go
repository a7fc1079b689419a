package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFetchRepairNote: offline, a cached file that failed its SHA512
// check was removed without a word, and only the network error of its
// download was said. Note now says so before the download: the error
// that follows makes sense.
func TestFetchRepairNote(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(rel *Release) error
		want    string
	}{
		{"set", func(rel *Release) error {
			return os.WriteFile(rel.Sets[0].Path, []byte("not the set"), 0o644)
		}, "cached rescue.tgz did not match its SHA512 (removed); downloading it again"},
		{"kernel", func(rel *Release) error {
			return os.Truncate(rel.Kernel.Path, 10)
		}, "cached netbsd-GENERIC.gz did not match its SHA512 (removed); downloading it again"},
		{"digest file", func(rel *Release) error {
			return os.WriteFile(filepath.Join(rel.Dir, "sets", "SHA512"), []byte("garbage\n"), 0o644)
		}, "cached sets/SHA512 is not a SHA512 digest file (removed); downloading it again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			rel, err := f.Fetch(context.Background(), "9.3", "i386")
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.corrupt(rel); err != nil {
				t.Fatal(err)
			}
			srv.Close() // offline
			var notes []string
			f.Note = func(msg string) { notes = append(notes, msg) }
			_, err = f.Fetch(context.Background(), "9.3", "i386")
			if !errors.Is(err, ErrNetwork) {
				t.Fatalf("err = %v, want ErrNetwork", err)
			}
			if len(notes) != 1 || notes[0] != tt.want {
				t.Errorf("notes %q, want one: %q", notes, tt.want)
			}
			if strings.Contains(strings.Join(notes, ""), f.Cache) {
				t.Errorf("note %q names the cache path; the name is enough", notes)
			}
		})
	}
}
