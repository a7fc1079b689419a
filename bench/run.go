package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Options tune Run.
type Options struct {
	// Boots is the number of timed boots per system; Warmup boots run
	// first and are not kept.
	Boots, Warmup int
	// Boot applies to every boot.
	Boot BootOptions
	// Progress, when set, gets one line per system and a dot per boot,
	// ended by "failed" when a boot failed, "interrupted" when ctx ended.
	Progress io.Writer
	// Config is copied into the results (Boots and Warmup are filled in).
	Config Config
}

// Run boots each target Warmup times, once more to sample its memory
// (unless its MemoryInTimedBoot), and Boots times measured, one system after the other. A system that fails
// keeps its error in System.Error and the others still run; only ctx
// ending stops Run early.
func Run(ctx context.Context, targets []Target, o Options) (*Results, error) {
	if o.Boots < 1 {
		return nil, fmt.Errorf("bench: %d boots: give at least 1", o.Boots)
	}
	if o.Warmup < 0 {
		return nil, fmt.Errorf("bench: %d warm-up boots: give 0 or more", o.Warmup)
	}
	res := &Results{Schema: SchemaVersion, Date: time.Now().UTC().Truncate(time.Second), Host: hostInfo(), Config: o.Config}
	res.Config.Boots, res.Config.Warmup = o.Boots, o.Warmup
	for _, t := range targets {
		s := runSystem(ctx, t, o)
		res.Systems = append(res.Systems, s)
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	res.computeRatios()
	for _, note := range []string{res.readyNotComparedNote(), res.memoryNotComparedNote()} {
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
	}
	return res, nil
}

// maxMemoryTries bounds the boots spent on one memory sample.
const maxMemoryTries = 3

func runSystem(ctx context.Context, t Target, o Options) System {
	s := System{Name: t.Name, Command: t.Command()}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format, args...)
		}
	}
	total := o.Warmup + 1 + o.Boots
	if t.MemoryInTimedBoot {
		total--
		progress("%s: %d warm-up, %d timed boots (memory sampled in the first) ", t.Name, o.Warmup, o.Boots)
	} else {
		progress("%s: %d warm-up, 1 memory, %d timed boots ", t.Name, o.Warmup, o.Boots)
	}
	defer progress("\n")
	memoryTries := 0
	sampleEarly := false
	for i := 0; i < total; i++ {
		bo := o.Boot
		bo.SampleMemory = i == o.Warmup
		bo.sampleAtFirstOutput = bo.SampleMemory && sampleEarly
		b, err := RunBoot(ctx, t, bo)
		if err != nil {
			s.Error, s.Err = err.Error(), err
			// Stopped, not failed: the boot ended because ctx did.
			if ctx.Err() != nil {
				progress("interrupted")
			} else {
				progress("failed")
			}
			break
		}
		if i == o.Warmup {
			s.Memory, s.MemoryError = b.Memory, ""
			if b.MemoryErr != nil {
				s.MemoryError = b.MemoryErr.Error()
			}
			s.NetworkMemory, s.NetworkMemoryError = b.NetworkMemory, ""
			if b.NetworkMemoryErr != nil {
				s.NetworkMemoryError = b.NetworkMemoryErr.Error()
			}
			// A guest that exits right after its first byte can be gone
			// before the stop signal lands, or before its smaps is read
			// (a zombie, or reaped): boot again to sample it. One gone
			// right after its ready event (the demo guest, under QEMU's
			// TCG) is sampled at its first byte then: at ready it would
			// be gone again.
			if s.Memory == nil && errors.Is(b.MemoryErr, ErrGone) {
				sampleEarly = true
			}
			if memoryTries++; !t.MemoryInTimedBoot && s.Memory == nil && memoryTries < maxMemoryTries {
				i--
				continue
			}
		}
		if i > o.Warmup || i == o.Warmup && t.MemoryInTimedBoot {
			s.Boots = append(s.Boots, *b)
		}
		progress(".")
	}
	if s.Boots == nil {
		s.Boots = []Boot{}
	}
	s.summarize()
	return s
}

func hostInfo() Host {
	h := Host{KVM: "usable"}
	h.CPUs, h.CPUsFrom = hostCPUs()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if err := openKVM(); err != nil {
		h.KVM = err.Error()
	}
	return h
}

// openKVM reports why /dev/kvm cannot be opened read-write, or nil.
func openKVM() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	return err
}
