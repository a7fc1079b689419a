package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFATNameAdvice: a name a FAT32 data image cannot hold gets what to
// do, for mkimg --data and run --share alike.
func TestFATNameAdvice(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string // the end of stderr
	}{
		{"emoji", []string{"a😀.txt"}, "(an ISO 9660 image can) (rename it, or make an ISO 9660 image of the directory with mkimg --data DIR --fs iso9660)"},
		{"one name on FAT32", []string{"a b.txt", "ab.txt"}, "(an ISO 9660 image can) (rename one, or make an ISO 9660 image of the directory with mkimg --data DIR --fs iso9660)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, stderr, status := runCLI(t, "mkimg", "--data", dir, "-i", filepath.Join(t.TempDir(), "d.img"))
			if msg := strings.TrimSpace(stderr); status != 1 || !strings.HasPrefix(msg, "smolvmm mkimg: "+dir) || !strings.HasSuffix(msg, tt.want) {
				t.Errorf("status %d, stderr\n%s\nwant 1 and one ending\n%s", status, msg, tt.want)
			}
		})
	}
}
