package vmm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/vmm"
)

// firstByte records when the first console byte is written.
type firstByte struct {
	once sync.Once
	at   chan time.Time
}

func (f *firstByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		f.once.Do(func() { f.at <- time.Now() })
	}
	return len(p), nil
}

// BenchmarkBootToFirstByte measures the demo guest's first console byte:
// for smolvmm from vmm.New (the library, in this process), for QEMU from
// its process start (qemu-system-i386 -kernel, with and without KVM), as
// the issue asks. The ms/first-byte and ms/exit metrics are the means per
// boot; `smolvmm bench --compare qemu` gives the full-process figures for
// both.
func BenchmarkBootToFirstByte(b *testing.B) {
	b.Run("smolvmm", func(b *testing.B) {
		needKVM(b)
		var first, exit time.Duration
		for i := 0; i < b.N; i++ {
			out := &firstByte{at: make(chan time.Time, 1)}
			start := time.Now()
			m, err := vmm.New(vmm.Config{Kernel: "demo", KernelImage: guests.Demo, Console: out})
			if err != nil {
				b.Fatal(err)
			}
			e, err := m.Run(context.Background())
			end := time.Now()
			m.Close()
			if err != nil || e.Reason != vmm.ExitDebug {
				b.Fatalf("demo guest ended with %v, %v", e, err)
			}
			first += (<-out.at).Sub(start)
			exit += end.Sub(start)
		}
		report(b, first, exit)
	})
	kernel := filepath.Join(b.TempDir(), "demo.elf")
	if err := os.WriteFile(kernel, guests.Demo, 0o644); err != nil {
		b.Fatal(err)
	}
	// QEMUTargets gives QEMU's targets as smolvmm bench runs them, with
	// their success rule: isa-debug-exit ends a good boot with an odd status.
	targets, skipped, err := bench.QEMUTargets(bench.QEMUSetup{Kernel: kernel, Append: vmm.DefaultAppend, MemoryMiB: vmm.DefaultMemoryMiB}, nil)
	if errors.Is(err, bench.ErrNoQEMU) {
		b.Skipf("%s not installed (apt-get install qemu-system-x86): %v", bench.QEMUBinary, err)
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range skipped {
		b.Logf("left out: %s", s)
	}
	for _, t := range targets {
		b.Run(t.Name, func(b *testing.B) {
			var first, exit time.Duration
			for i := 0; i < b.N; i++ {
				boot, err := bench.RunBoot(context.Background(), t, bench.BootOptions{Timeout: 2 * time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				first += time.Duration(boot.Phases[bench.PhaseFirstOutput] * float64(time.Millisecond))
				exit += time.Duration(boot.Phases[bench.PhaseExit] * float64(time.Millisecond))
			}
			report(b, first, exit)
		})
	}
}

func report(b *testing.B, first, exit time.Duration) {
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "ms/first-byte")
	b.ReportMetric(float64(exit.Microseconds())/1000/float64(b.N), "ms/exit")
}
