package snapshot

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTargetReadOld: ReadOld reads the start of the file a Target
// replaces, as it was at OpenTarget, through a symlink too; none there,
// or once replaced, it says the file does not exist.
func TestTargetReadOld(t *testing.T) {
	tests := []struct {
		name    string
		content *string
		link    bool
		want    string
		exists  bool
	}{
		{name: "no file"},
		{name: "empty", content: new(string), exists: true},
		{name: "short", content: ptr("SMOL"), want: "SMOL", exists: true},
		{name: "long", content: ptr(Magic + " and more"), want: Magic, exists: true},
		{name: "through a symlink", content: ptr("# notes"), link: true, want: "# notes", exists: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.snap")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			arg := path
			if tt.link {
				arg = filepath.Join(dir, "link")
				if err := os.Symlink("f.snap", arg); err != nil {
					t.Fatal(err)
				}
			}
			tg, err := OpenTarget(arg)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			buf := make([]byte, len(Magic))
			n, exists, err := tg.ReadOld(buf)
			if err != nil || exists != tt.exists || string(buf[:n]) != tt.want {
				t.Fatalf("ReadOld: %q, exists %v, %v; want %q, %v", buf[:n], exists, err, tt.want, tt.exists)
			}
			if err := tg.Write(writeString("new")); err != nil {
				t.Fatal(err)
			}
			if n, exists, err := tg.ReadOld(buf); n != 0 || exists || err != nil {
				t.Fatalf("ReadOld after a commit: %d, %v, %v; want none", n, exists, err)
			}
		})
	}
}

func ptr(s string) *string { return &s }
