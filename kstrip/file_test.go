package kstrip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testcaps"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func TestReadFileGzipByMagic(t *testing.T) {
	dir := t.TempDir()
	data := []byte("\x7fELF pretend kernel")
	tests := []struct {
		name    string
		content []byte
		gzipped bool
	}{
		{"netbsd", data, false},
		{"netbsd-GENERIC.gz", gz(t, data), true},
		{"netbsd-no-suffix", gz(t, data), true},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.content, 0o640); err != nil {
			t.Fatal(err)
		}
		// Set apart from the umask, which WriteFile's mode is subject to.
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
		f, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, data) || f.Gzipped != tc.gzipped || f.Mode != 0o640 {
			t.Errorf("%s: data %q gzipped %v mode %v", tc.name, f.Data, f.Gzipped, f.Mode)
		}
	}
}

func TestReadFileBadGzip(t *testing.T) {
	dir := t.TempDir()
	full := gz(t, bytes.Repeat([]byte("kernel"), 1000))
	tests := []struct {
		name    string
		content []byte
		msg     string
	}{
		{"truncated", full[:len(full)/2], "truncated"},
		{"bad header", []byte{0x1f, 0x8b, 0, 0}, "gzip header"},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.content, 0o644)
		_, err := ReadFile(p)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want it to name the file and say %q", tc.name, err, tc.msg)
		}
	}
}

func TestWriteFile(t *testing.T) {
	// A new file gets mode less the umask (atomicfile.Write): with
	// umask 022 the modes below come out whole. The umask is the
	// process's; no test of this package runs in parallel.
	defer syscall.Umask(syscall.Umask(0o022))
	dir := t.TempDir()
	data := append([]byte("\x7fELF"), bytes.Repeat([]byte("cfdata"), 5000)...)
	tests := []struct {
		name     string
		compress bool
		mode     os.FileMode
	}{
		{"plain", false, 0o755},
		{"plain.gz", true, 0o600},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, tc.name)
		if err := WriteFile(p, data, tc.compress, tc.mode); err != nil {
			t.Fatal(err)
		}
		first := readFile(t, p)
		st, _ := os.Stat(p)
		if st.Mode().Perm() != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.name, st.Mode().Perm(), tc.mode)
		}
		f, err := ReadFile(p)
		if err != nil || !bytes.Equal(f.Data, data) || f.Gzipped != tc.compress {
			t.Errorf("%s: read back %v gzipped=%v", tc.name, err, f.Gzipped)
		}
		// Same data, same bytes, even compressed; the file replaced
		// keeps its mode.
		os.Chmod(p, 0o640)
		WriteFile(p, data, tc.compress, tc.mode)
		if !bytes.Equal(first, readFile(t, p)) {
			t.Errorf("%s: rewriting the same data gave different bytes", tc.name)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
			t.Errorf("%s: replaced, mode %v, want 0640 kept", tc.name, st.Mode().Perm())
		}
	}
	// A symlink is followed, not replaced; no temporary file is left.
	target := filepath.Join(dir, "plain")
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	if err := WriteFile(link, []byte("new"), false, 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 || string(readFile(t, target)) != "new" {
		t.Error("the symlink was replaced or its target not written")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	// A directory that cannot be written: an error, the old file intact.
	// Root writes anywhere, so as root (in CI) it runs without the
	// capability that lets it.
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o755)
	p := filepath.Join(ro, "k")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(ro, 0o555)
	defer os.Chmod(ro, 0o755)
	var err error
	testcaps.WithoutDAC(t, func() { err = WriteFile(p, data, false, 0o644) })
	if !errors.Is(err, fs.ErrPermission) || string(readFile(t, p)) != "old" {
		t.Errorf("write into a read-only directory: err %v, want a permission error and the old file", err)
	}
}

// TestReadFileChecksBeforeReading: a file larger than any kernel, or one
// that starts like neither ELF nor gzip, is refused from its size and its
// first bytes, before the rest is read into memory (a sparse file of
// gigabytes read whole was a 2 GiB process saying "not an ELF file").
func TestReadFileChecksBeforeReading(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		head []byte
		size int64
		want error
		msg  []string
	}{
		{"plain past the limit", []byte("\x7fELF"), MaxImage + 1<<20, ErrTooLarge, []string{"513 MiB, more than the 512 MiB allowed"}},
		{"gzip past the limit", []byte{0x1f, 0x8b, 8, 0}, MaxImage + 1, ErrTooLarge, []string{"512 MiB and 1 byte, more than the 512 MiB allowed"}},
		{"zeros", nil, 256 << 20, ErrNotELF, []string{`starts with "\x00\x00\x00\x00"`}},
		{"script", []byte("#!/bin/sh\n"), 256 << 20, ErrNotELF, []string{`starts with "#!/b"`}},
		// As run says it; it was `the file starts with "", not "\x7fELF"`.
		{"empty", nil, 0, ErrNotELF, []string{": the file is empty"}},
		{"three ELF bytes", []byte("\x7fEL"), 3, ErrNotELF, []string{`starts with "\x7fEL"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, tc.head, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, tc.size); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := ReadFile(p)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, m := range append(tc.msg, p) {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %q, want it to say %q", err, m)
				}
			}
			// Facts only: the CLI says what to give instead.
			if strings.Contains(err.Error(), "give ") {
				t.Errorf("err = %q gives advice", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("allocated %d bytes before refusing the file", n)
			}
		})
	}
}
