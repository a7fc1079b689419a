package bench_test

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/smolvmm/smolvmm/bench"
)

// A shell stands in for a VMM here: anything that prints its guest's
// console on standard output can be measured.
var shell = bench.Target{Name: "sh", Path: "/bin/sh", Args: []string{"-c", "echo booting; sleep 0.01; echo service ready"}}

func ExampleRunBoot() {
	b, err := bench.RunBoot(context.Background(), shell, bench.BootOptions{
		Ready:   bench.Ready{Pattern: regexp.MustCompile(`ready$`)},
		Timeout: 10 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The phases are milliseconds from the start: the ready line comes
	// after the script's 10 ms sleep, the exit after the ready line.
	ready := b.Phases[bench.PhaseReady]
	fmt.Println("ready by", b.ReadyBy, "after the sleep:", ready >= 10)
	fmt.Println("first output <= ready <= exit:", b.Phases[bench.PhaseFirstOutput] <= ready && ready <= b.Phases[bench.PhaseExit])
	fmt.Println("exit status", b.Status)
	// Output:
	// ready by line after the sleep: true
	// first output <= ready <= exit: true
	// exit status 0
}

func ExampleRun() {
	res, err := bench.Run(context.Background(), []bench.Target{shell}, bench.Options{
		Boots: 3, Config: bench.Config{Kernel: "none", MemoryMiB: 1},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range res.Systems[0].Phases {
		fmt.Println(p.Phase, p.N)
	}
	fmt.Println(res.Validate())
	// Output:
	// first-output 3
	// exit 3
	// <nil>
}
