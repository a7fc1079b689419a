package bench

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A restore (Target.ReadyReported) whose program never reports its guest
// ready, as for a snapshot taken before the guest was ready, times out
// saying so (ErrNoReadyReport), with a ready pattern the guest never
// prints or without one: more time would not have helped. A reported
// restore that stops is no timeout, and a boot that is not a restore
// times out without it.
func TestRunBootNoReadyReport(t *testing.T) {
	for _, tt := range []struct {
		name     string
		mode     string
		reported bool
		ready    *regexp.Regexp
		want     []error // nil: no error
	}{
		{"unreported, no pattern", "vmmunreadyserve", true, nil, []error{ErrTimeout, ErrNoReadyReport}},
		{"unreported, pattern", "vmmunreadyserve", true, regexp.MustCompile("^marker: ready"), []error{ErrTimeout, ErrNoReadyReport}},
		{"reported", "vmmreadyserve", true, nil, nil},
		{"not a restore", "vmmunreadyserve", false, regexp.MustCompile("^marker: ready"), []error{ErrTimeout}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := withReport(fakeTarget(t, "fake", tt.mode))
			target.ReadyFlag, target.ReadyReported = "-ready-fd", tt.reported
			_, err := RunBoot(context.Background(), target, BootOptions{Ready: Ready{Pattern: tt.ready},
				Timeout: time.Second, ExitWait: 50 * time.Millisecond, StopGrace: time.Second})
			if (err == nil) != (tt.want == nil) {
				t.Fatalf("RunBoot: %v, want %v", err, tt.want)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("RunBoot: %v, want it to wrap %v", err, w)
				}
			}
			if err != nil && !tt.reported && errors.Is(err, ErrNoReadyReport) {
				t.Errorf("RunBoot: %v: a boot that is no restore has no ready report to miss", err)
			}
			if err != nil && !strings.Contains(err.Error(), "boot did not end within 1s") {
				t.Errorf("RunBoot: %v, want it to say the timeout", err)
			}
		})
	}
}
