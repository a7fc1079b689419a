package fstree_test

import (
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
)

// TestCleanRefuses: Clean and Put refuse a name longer than ext2 stores
// (its directory entry's length is one byte: the name would be cut) and a
// name holding a NUL (no file system path can name it), and take a name of
// the most bytes.
func TestCleanRefuses(t *testing.T) {
	longest := strings.Repeat("a", fstree.MaxNameLen)
	tests := []struct {
		name, path, want, wantErr string
	}{
		{"longest name", "etc/" + longest, "etc/" + longest, ""},
		{"name of 256 bytes", "etc/" + longest + "a", "", `name "aaaaaaaaaaaaaaaaaaaa"... is 256 bytes, ext2 allows 255`},
		{"directory name of 256 bytes", "./" + longest + "a/x", "", "is 256 bytes, ext2 allows 255"},
		{"NUL", "etc/pass\x00wd", "", `path "etc/pass\x00wd" contains a NUL byte`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fstree.Clean(tt.path)
			putErr := fstree.New().Put(tt.path, fstree.NewFile(0644, nil))
			if tt.wantErr == "" {
				if err != nil || got != tt.want || putErr != nil {
					t.Errorf("Clean = %.30q, %v; Put: %v; want %.30q and no errors", got, err, putErr, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Clean = %.30q, %v; want an error containing %q", got, err, tt.wantErr)
			}
			if putErr == nil || !strings.Contains(putErr.Error(), tt.wantErr) {
				t.Errorf("Put: %v; want an error containing %q", putErr, tt.wantErr)
			}
		})
	}
}
