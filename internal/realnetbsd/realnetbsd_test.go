package realnetbsd

import (
	"fmt"
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
		})
	}
}
