package realnetbsd

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// outcomeTB records how Files ended a test: Fatalf, Skipf or neither.
type outcomeTB struct {
	testing.TB
	how, msg string
}

func (o *outcomeTB) Helper() {}

func (o *outcomeTB) Fatalf(format string, args ...any) {
	o.how, o.msg = "fail", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (o *outcomeTB) Skipf(format string, args ...any) {
	o.how, o.msg = "skip", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestFilesMissing: without the kernel, Files skips, except under
// SMOLVMM_NESTEDKVM=require (CI), where it fails: CI must not pass without
// booting the real kernel.
func TestFilesMissing(t *testing.T) {
	saved := machineDir
	t.Cleanup(func() { machineDir = saved })
	machineDir = t.TempDir() + "/absent"
	t.Chdir(t.TempDir())
	t.Setenv(EnvVar, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for _, tt := range []struct{ mode, want string }{{"", "skip"}, {"off", "skip"}, {"require", "fail"}} {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			t.Setenv(RequireVar, tt.mode)
			o := &outcomeTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Files(o)
				o.how = "returned"
			}()
			<-done
			if o.how != tt.want || !strings.Contains(o.msg, "the real NetBSD kernel is not here") {
				t.Fatalf("Files %s (%q); want it to %s naming the missing kernel", o.how, o.msg, tt.want)
			}
			// A new user learns how to get it.
			if !strings.Contains(o.msg, "make netbsd-kernel") {
				t.Errorf("Files: %q names no way to get the kernel (make netbsd-kernel)", o.msg)
			}
		})
	}
}

// TestDirCache: Dir finds the files where .ci/netbsd-kernel (make
// netbsd-kernel) downloads them, in the user's cache, when they are
// neither named nor beside the repository.
func TestDirCache(t *testing.T) {
	saved := machineDir
	t.Cleanup(func() { machineDir = saved })
	machineDir = t.TempDir() + "/absent"
	t.Chdir(t.TempDir())
	t.Setenv(EnvVar, "")
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	want := filepath.Join(cache, "smolvmm-test", "netbsd", "g4u-5.99.15")
	if _, err := Dir(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Dir with an empty cache: %v, want an error naming %s", err, want)
	}
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(want, KernelFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Dir(); err != nil || got != want {
		t.Errorf("Dir = %q, %v; want %s", got, err, want)
	}
}

// TestCheckDigest: the kernel is known by its file's digest or, compressed
// again, by its content's; anything else is refused naming both digests.
func TestCheckDigest(t *testing.T) {
	content := []byte("a kernel")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	gz := func(b []byte, level int) []byte {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	orig, again := gz(content, gzip.BestSpeed), gz(content, gzip.BestCompression)
	if bytes.Equal(orig, again) {
		t.Fatal("the two compressions are identical: the test proves nothing")
	}
	truncated := again[:len(again)-6]
	tests := []struct {
		name        string
		data        []byte
		sum, rawSum string
		wantErr     string
	}{
		{"the file itself", orig, sum(orig), sum(content), ""},
		{"compressed again", again, sum(orig), sum(content), ""},
		{"compressed again, no content digest", again, sum(orig), "", "want " + sum(orig)},
		{"other content", gz([]byte("another kernel"), 9), sum(orig), sum(content), "uncompressed sha256"},
		{"not gzip", content, sum(orig), sum(content), "not gzip data"},
		{"truncated gzip", truncated, sum(orig), sum(content), "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDigest(tt.data, tt.sum, tt.rawSum)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkDigest: %v, want accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkDigest: %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestFilesRecompressed: the real kernel compressed again, as .ci/run
// stores a download, is found and accepted through EnvVar; one byte
// changed in its content is refused.
func TestFilesRecompressed(t *testing.T) {
	t.Setenv(RequireVar, "")
	kernel, module := Files(t)
	raw, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	content, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func([]byte)
		want string
	}{
		{"same content", func([]byte) {}, "returned"},
		{"one byte changed", func(b []byte) { b[len(b)/2] ^= 1 }, "fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := bytes.Clone(content)
			tt.edit(c)
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			zw.Write(c)
			zw.Close()
			if err := os.WriteFile(filepath.Join(dir, KernelFile), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, ModuleFile), mod, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv(EnvVar, dir)
			o := &outcomeTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Files(o)
				o.how = "returned"
			}()
			<-done
			if o.how != tt.want {
				t.Fatalf("Files %s (%q), want it %s", o.how, o.msg, tt.want)
			}
		})
	}
}
