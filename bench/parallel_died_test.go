package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// A VM that printed its first console byte but ended by itself before the
// bench measured it did not run with the others: it failed, saying how it
// ended and why (its standard error, with the limit it found), and the
// text, JSON and SVG count it so.
func TestRunParallelDiedAfterFirstByte(t *testing.T) {
	tests := []struct {
		mode     string
		want     string // the VM's error
		wantHint string // in the VM's error too, after its standard error
		limit    Limit
	}{
		{"crash", "exit status 2 after its first console byte, before the bench measured it: the guest crashed: triple fault", "", ""},
		{"threadfail", "exit status 2 after its first console byte, before the bench measured it: runtime: failed to create new OS thread (have 7 already; errno=11); fatal error: newosproc",
			"(no more processes: a task limit is reached", LimitTasks},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			target := fakeTarget(t, "fake", tt.mode)
			// Not stopped at its first byte: the bench waits for it to
			// settle, which it never does, and so finds it gone.
			target.SettledFlag = "-settled-fd"
			res, err := RunParallel(context.Background(), target, ParallelOptions{N: 1, Timeout: 30 * time.Second,
				Config: Config{Kernel: "fake", MemoryMiB: 1}})
			if err != nil {
				t.Fatal(err)
			}
			v := res.VMs[0]
			if res.Started != 0 || res.Failed != 1 || v.Started() || v.Memory != nil || v.MemoryError != "" {
				t.Fatalf("started %d failed %d, vm %+v: want the VM failed", res.Started, res.Failed, v)
			}
			if !strings.HasPrefix(v.Error, tt.want) || !strings.Contains(v.Error[len(tt.want):], tt.wantHint) {
				t.Errorf("error %q, want %q then %q", v.Error, tt.want, tt.wantHint)
			}
			if v.Limit != tt.limit {
				t.Errorf("limit %q, want %q", v.Limit, tt.limit)
			}
			if v.FirstOutputMS <= 0 {
				t.Errorf("first output %.3f ms, want its byte's time", v.FirstOutputMS)
			}
			var js bytes.Buffer
			if err := res.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			back, err := ReadParallelResults(&js)
			if err != nil {
				t.Fatalf("own JSON does not read back: %v", err)
			}
			if back.Started != 0 || back.Failed != 1 || back.VMs[0].Error != v.Error || back.VMs[0].Limit != v.Limit {
				t.Errorf("JSON: started %d failed %d, vm %+v", back.Started, back.Failed, back.VMs[0])
			}
			var text bytes.Buffer
			if err := res.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if want := "started 0, failed 1: none started\n"; !strings.Contains(text.String(), want) || !strings.Contains(text.String(), "vm 0: "+tt.want) {
				t.Errorf("text lacks %q and the VM's error:\n%s", want, text.String())
			}
			if strings.Contains(text.String(), "memory not read") {
				t.Errorf("text says the failed VM's memory was not read:\n%s", text.String())
			}
			var svg bytes.Buffer
			if err := res.WriteSVG(&svg); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(svg.String(), "exit status 2 after its first console byte") {
				t.Errorf("SVG does not show the VM failed:\n%s", svg.String())
			}
		})
	}
}
