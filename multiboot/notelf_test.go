package multiboot

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf"
	"github.com/smolvmm/smolvmm/netbsdboot"
)

// TestLoadNotELFSentinels checks that a kernel that is neither ELF nor
// a.out-kludge fails with an error every loader's ErrNotELF matches (they
// are bootelf's, re-exported), and that its message says "not an ELF
// file" once, with the bytes found and the missing flag.
func TestLoadNotELFSentinels(t *testing.T) {
	tests := []struct {
		name  string
		image []byte
		msg   []string
	}{
		{"zeros after the header", append(mbHeader(FlagMemoryInfo), make([]byte, 100)...),
			[]string{`the file starts with "\x02\xb0\xad\x1b", not "\x7fELF"`, "flag 16 (a.out kludge)"}},
		{"PE file", append([]byte("MZ\x90\x00"), mbHeader(FlagMemoryInfo)...),
			[]string{`the file starts with "MZ\x90\x00", not "\x7fELF"`, "flag 16 (a.out kludge)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(newMem(testMem), bytes.NewReader(tt.image), int64(len(tt.image)), Options{})
			if err == nil {
				t.Fatal("Load succeeded, want a not-ELF error")
			}
			for _, want := range []struct {
				name string
				err  error
			}{{"multiboot.ErrNotELF", ErrNotELF}, {"bootelf.ErrNotELF", bootelf.ErrNotELF}, {"netbsdboot.ErrNotELF", netbsdboot.ErrNotELF}} {
				if !errors.Is(err, want.err) {
					t.Errorf("Load: %v; does not match %s", err, want.name)
				}
			}
			msg := err.Error()
			if n := strings.Count(msg, "not an ELF file"); n != 1 {
				t.Errorf("Load: %q says \"not an ELF file\" %d times, want once", msg, n)
			}
			for _, s := range tt.msg {
				if !strings.Contains(msg, s) {
					t.Errorf("Load: %q lacks %q", msg, s)
				}
			}
		})
	}
}
