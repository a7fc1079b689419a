package debiankernels

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how Missing ended it.
type recorder struct {
	testing.TB
	ended, msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.ended, r.msg = "fail", fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) {
	r.ended, r.msg = "skip", fmt.Sprint(args...)
	runtime.Goexit()
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", "skip"},
		{"require", "fail"},
		{"yes", "skip"},
	} {
		t.Run(tc.want+"/"+tc.env, func(t *testing.T) {
			t.Setenv(RequireVar, tc.env)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); Missing(r, "no %s", "kernel") }()
			<-done
			if r.ended != tc.want || !strings.HasPrefix(r.msg, "no kernel") {
				t.Errorf("%s=%q: ended %q with %q, want %s saying why", RequireVar, tc.env, r.ended, r.msg, tc.want)
			}
		})
	}
}

// TestFileRequire asks for a package apt-get cannot download, in an empty
// cache: under RequireVar=require that fails the test, not skips it.
func TestFileRequire(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv(RequireVar, "require")
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); File(r, "smolvmm-no-such-package", "boot/x") }()
	<-done
	if r.ended != "fail" || !strings.Contains(r.msg, "smolvmm-no-such-package") {
		t.Errorf("ended %q with %q, want a failure naming the package", r.ended, r.msg)
	}
	if dir := CacheDir("p"); !strings.HasPrefix(dir, os.Getenv("XDG_CACHE_HOME")) || filepath.Base(filepath.Dir(dir)) != "debian" {
		t.Errorf("CacheDir(p) = %s, want it under $XDG_CACHE_HOME/smolvmm-test/debian", dir)
	}
}
