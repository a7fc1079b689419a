package rebuild

import (
	"errors"
	"os"
	"testing"
)

// TestStampMatchesFileID: a stamp is named after the image's path, and
// describes the file whose ID it records. Where the file system keeps no
// birth time, the ID was a device and an inode number alone, which a
// file written after the image was deleted takes again (rm app.img; cp
// other.img app.img): that file was booted as up's own, or replaced. An
// inode generation number now stands for the birth time, and an ID with
// neither describes no file.
func TestStampMatchesFileID(t *testing.T) {
	tests := []struct {
		name     string
		stamped  string // the ID the stamp records
		id       string // the ID of the file now at the image's path
		describe bool
	}{
		{"birth time, the same file", "8.1:13:1700000000.000000001", "8.1:13:1700000000.000000001", true},
		{"birth time, the disk under another device number", "8.1:13:1700000000.000000001", "8.2:13:1700000000.000000001", true},
		{"birth time, the inode taken by another file", "8.1:13:1700000000.000000001", "8.1:13:1700000500.000000002", false},
		{"generation, the same file", "7.0:13:g3033903645", "7.0:13:g3033903645", true},
		{"generation, the inode taken by another file", "7.0:13:g3033903645", "7.0:13:g1347487576", false},
		// A generation number is told from the next file's on one file
		// system only.
		{"generation, another device", "7.0:13:g3033903645", "7.1:13:g3033903645", false},
		{"neither, the same inode", "7.0:13", "7.0:13", false},
		// Recorded by an earlier up, which read no generation numbers:
		// nothing says the file is the one it built.
		{"recorded without a generation, the file has one", "7.0:13", "7.0:13:g3033903645", false},
		{"recorded with a generation, the file has none now", "7.0:13:g3033903645", "7.0:13", false},
		{"a birth time against a generation", "7.0:13:1700000000.000000001", "7.0:13:g1700000000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := parseStamp([]byte("v1 "+tt.stamped+" 1 i386\n"), tt.id)
			if got != tt.describe {
				t.Errorf("a stamp recording %s describes the file %s: %v, want %v", tt.stamped, tt.id, got, tt.describe)
			}
		})
	}
}

// TestRecordUnidentified: an image whose ID is a device and an inode
// number alone is not recorded, for no stamp of it could be told from a
// later file's; the error says why, and no stamp is written.
func TestRecordUnidentified(t *testing.T) {
	tests := []struct {
		id      string
		written bool
	}{
		{"7.0:13", false},
		{"7.0:13:g3033903645", true},
		{"8.1:13:1700000000.000000001", true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			s := DirStamp(t.TempDir(), "/vm/a.img")
			err := s.record("/vm/a.img", tt.id, "v1", 1, "i386")
			_, statErr := os.Stat(string(s))
			if tt.written {
				if err != nil || statErr != nil {
					t.Errorf("record: %v, stamp: %v, want it written", err, statErr)
				}
				return
			}
			if !errors.Is(err, ErrUnidentified) {
				t.Errorf("record: %v, want ErrUnidentified", err)
			}
			if statErr == nil {
				t.Errorf("a stamp was written for %s", tt.id)
			}
		})
	}
}
