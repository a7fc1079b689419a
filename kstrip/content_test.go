package kstrip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotELFNamesContent: a file kstrip cannot edit is named by what its
// bytes are, and the data a gzipped file decompressed to is not taken for
// a file to give gzipped: a kernel gzipped twice was told `the file starts
// with "\x1f\x8b\b\x00", not "\x7fELF"; give an uncompressed or gzipped
// NetBSD kernel`, and xz data was not named. The advice is the CLI's:
// kstrip states the facts.
func TestNotELFNamesContent(t *testing.T) {
	ustar := make([]byte, 1024)
	copy(ustar, "./etc/motd")
	copy(ustar[257:], "ustar\x0000")
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"gzip twice", gz(t, gz(t, []byte("kernel"))),
			`not an ELF file: the kernel image starts with "\x1f\x8b\b\x00", not "\x7fELF": it is gzip data: a gzipped kernel file that decompresses to it is compressed twice`},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F"),
			`not an ELF file: the file starts with "\xfd7zX", not "\x7fELF": it is xz-compressed data`},
		{"zstd", []byte("\x28\xb5\x2f\xfd\x24\x05\x29"),
			`not an ELF file: the file starts with "(\xb5/\xfd", not "\x7fELF": it is zstd-compressed data`},
		{"gzipped set", gz(t, ustar),
			`not an ELF file: the kernel image starts with "./et", not "\x7fELF": it is a tar archive ("ustar" at offset 257), not a kernel`},
		{"text", []byte("hello, no kernel here"),
			`not an ELF file: the file starts with "hell", not "\x7fELF"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := ReadFile(path)
			if err == nil {
				_, err = Parse(f.Data)
			}
			if !errors.Is(err, ErrNotELF) || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("error: %v\nwant ErrNotELF ending %s", err, tc.want)
			}
			// A file that may be a kernel given otherwise (not gzip data
			// nor a set) is a *NotELFError, for the CLI's advice.
			if want := strings.Contains(tc.want, "the file starts"); errors.As(err, new(*NotELFError)) != want {
				t.Errorf("error: %v: a *NotELFError %v, want %v", err, !want, want)
			}
			// The others, no kernel as given, are a *NotKernelError,
			// for the CLI's advice about them.
			if want := strings.Contains(tc.want, "the kernel image starts"); errors.As(err, new(*NotKernelError)) != want {
				t.Errorf("error: %v: a *NotKernelError %v, want %v", err, !want, want)
			}
		})
	}
}
