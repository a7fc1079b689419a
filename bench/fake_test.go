package bench

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netback/stackguest"
)

// The test binary doubles as a fake VMM: with BENCH_FAKE set, TestMain runs
// fakeVMM instead of the tests, so RunBoot can be tested on a real child
// process without KVM.
func TestMain(m *testing.M) {
	if mode := os.Getenv("BENCH_FAKE"); mode != "" {
		os.Exit(fakeVMM(mode, os.Args[1:]))
	}
	if mode := os.Getenv("BENCH_PROC"); mode != "" {
		os.Exit(procChild(mode))
	}
	if procs := os.Getenv("BENCH_OOMBENCH"); procs != "" {
		os.Exit(oomBench(procs))
	}
	if mode, pidFile, ok := strings.Cut(os.Getenv("BENCH_REPORTBENCH"), ":"); ok {
		os.Exit(reportBench(pidFile, mode == "parallel"))
	}
	if os.Getenv("BENCH_HOLDTEMPDIR") != "" {
		os.Exit(holdTempDir())
	}
	os.Exit(m.Run())
}

// fakeTarget runs the test binary as a fake VMM in mode.
func fakeTarget(t testing.TB, name, mode string, env ...string) Target {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Target{Name: name, Path: exe, Env: append([]string{"BENCH_FAKE=" + mode}, env...), GuestBytes: fakeGuestBytes, Success: DebugExitSuccess}
}

const (
	fakeGuestBytes = 20 << 20 // not 8 MiB: thread stacks have that size
	fakeTouched    = 3 << 20
	fakeDelay      = 40 * time.Millisecond
	// fakeSettleLate is longer than the second the parallel bench once
	// waited for a VM to settle, as 50 VMs on two cores can take.
	fakeSettleLate = 1500 * time.Millisecond
	// fakeReadyLate is when the readylate fake prints its ready line:
	// well after the timeout of the test that runs it.
	fakeReadyLate = 10 * fakeDelay
	// fakeNetworkBytes is what a fake shared network holds until it
	// settles.
	fakeNetworkBytes = 32 << 20
)

// fakeVMM modes:
//
//	lines    prints a line, after fakeDelay "marker: ready", exits 1 (as QEMU's debug-exit);
//	         given -settled-fd (a boot sampled), settles after its first line
//	         and waits there until the bench has read its memory
//	report   as lines, and writes a ChildReport to the file after --report,
//	         with the guest status it exits with: BENCH_STATUS, 1 unless set
//	vmmfail  as report, but its guest did not choose the status (no guest
//	         status in the report: an error of the VMM after the guest
//	         printed, or a signal under a jail)
//	port     prints a line, listens on BENCH_ADDR after fakeDelay, and runs until
//	         SIGTERM (a minute at most), on which it exits 130
//	fwd      a netstack guest on the user network with BENCH_PORT forwarded to
//	         its port 80, where it listens once fakeDelay has passed and it has
//	         refused a connection there (a TCP reset); writes when that was,
//	         in ns since its start, to the file BENCH_REFUSED; runs as port,
//	         and writes a ChildReport (its runtime phase) to --report
//	memory   maps fakeGuestBytes of anonymous RAM, touches fakeTouched of it, prints, sleeps
//	         (with BENCH_HOLD set, a minute: until the bench ends it, as a guest runs;
//	         with BENCH_RESUMED naming a file, each start but the one that
//	         creates it first waits after its line for SIGCONT, the bench's
//	         resume after its sample, a minute at most);
//	         given -settled-fd (a boot sampled), settles after its line and
//	         waits there until the bench has read its memory
//	silent   prints "boom" on stderr and exits 3
//	onefails as memory, except the one start that creates the file BENCH_ONCE,
//	         which prints "no room for this one" on stderr and exits 3
//	onecrashes as onefails, but that one crashes the Go runtime (a panic,
//	         then the stacks of 40 goroutines)
//	hang     prints a line and sleeps for a minute
//	crash    prints a line, "the guest crashed: triple fault" on stderr, exits 2
//	hog      touches ever more memory, 16 MiB at a time (8 GiB at most,
//	         then exits 6), printing nothing: for the OOM killer to take
//	threadfail prints a line, then the Go runtime's "failed to create new
//	         OS thread" and "fatal error: newosproc" on stderr, exits 2
//	serve    maps guest RAM, prints a line, "marker: ready", and runs until SIGTERM, on which
//	         it writes a ChildReport (with a guest-exit, as smolvmm reports a
//	         stop) if given --report and exits 130, as smolvmm does
//	stuck    as serve, but ignores SIGTERM
//	slowexit prints "marker: ready", its guest ends at once (guest-exit and
//	         closed in its --report), but the process takes 4*fakeDelay to
//	         exit, ignoring SIGTERM, and exits 1 (as a slow VMM on a loaded host)
//	settles  as memory, then after fakeDelay touches fakeTouched more and
//	         writes its settled byte to -settled-fd; exits after 10*fakeDelay
//	unsettled as settles, without the second touch and the byte
//	settleslate as settles, after fakeSettleLate instead of fakeDelay
//	readyfd  prints a line, after fakeDelay writes its ready time to -ready-fd
//	         (as smolvmm does once its guest accepts), exits after 2*fakeDelay
//	notready as readyfd, without writing to -ready-fd
//	vmmready as smolvmm restoring a snapshot taken once ready: maps guest RAM,
//	         touches fakeTouched of it, writes its ready time to -ready-fd
//	         (when given), prints "resumed" (not the ready line again), after
//	         fakeDelay touches fakeTouched more and writes its settled byte,
//	         waits (5 s at most) for EOF on -settled-fd, writes a ChildReport
//	         with that ready time to --report (when given) and exits 0
//	vmmreadyline as vmmready, but prints "marker: ready" after "resumed"
//	         (the guest's own line, after its boot-timer write) and never
//	         writes its settled byte
//	vmmreadyserve as smolvmm restoring a snapshot of a service taken once
//	         ready: writes its ready time to -ready-fd (when given), prints
//	         "resumed" and runs until SIGTERM (a minute at most), then
//	         writes a ChildReport with that ready time to --report (when
//	         given) and exits 130
//	vmmreadytouch as vmmreadyserve, but maps guest RAM first, and touches
//	         fakeTouched of it fakeDelay after its report, before it prints
//	vmmreadysilent as smolvmm restoring a snapshot of a service taken at
//	         its prompt: maps guest RAM, writes its ready time to -ready-fd
//	         (when given), after fakeDelay touches fakeTouched of it (its
//	         guest runs) and writes its settled byte to -settled-fd (when
//	         given), never prints, and runs until SIGTERM (a minute at
//	         most), then writes a ChildReport with that ready time to
//	         --report (when given) and exits 130
//	vmmunreadyserve as vmmreadyserve, without the ready report (a restore
//	         of a snapshot taken before its guest was ready)
//	portready as smolvmm booting a guest that writes the boot-timer port:
//	         maps guest RAM, touches fakeTouched of it, writes its ready time to -ready-fd (when given), prints
//	         "booting", after 3*fakeDelay "marker: ready", and exits 0 with
//	         a ChildReport (given --report) whose ready and first-run are
//	         that ready time; given -settled-fd (a boot sampled), settles
//	         after "booting" and waits there until the bench has read its memory
//	portreadyserve as portready, but never prints the ready line: runs
//	         until SIGTERM (a minute at most), then writes its report and
//	         exits 130, as smolvmm stopped
//	portreadyline as portready, but after its ready line runs until
//	         SIGTERM as portreadyserve does
//	readylate writes its PID to the file BENCH_PIDFILE, prints "booting",
//	         after fakeReadyLate "marker: ready", and runs for a minute
//	readyahead prints "booting" and, once the bench has read it, reports
//	         on -ready-fd a ready time a minute ahead (a ready event timed
//	         after the bench's timeout, seen before its timer fires, as on a
//	         loaded host); exits after fakeDelay
//	bench    not a VMM but a bench of them: see fakeBench
//	bootbench not a VMM but a sequential bench of one: see fakeBootBench
//	network  not a VMM but a shared network: touches fakeNetworkBytes,
//	         prints "up", and on SIGUSR1 unmaps them and prints "released";
//	         runs until killed
//
// With BENCH_COUNT set, every start appends a byte to that file.
func fakeVMM(mode string, args []string) int {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	report := fs.String("report", "", "")
	settledFD := fs.Int("settled-fd", 0, "")
	readyFD := fs.Int("ready-fd", 0, "")
	_ = fs.Parse(args)
	r := ChildReport{Phases: map[string]int64{PhaseRuntime: MonoNow()}}
	if p := os.Getenv("BENCH_COUNT"); p != "" { // one byte per start
		if f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Write([]byte{'.'})
			f.Close()
		}
	}
	switch mode {
	case "network":
		mem, err := syscall.Mmap(-1, 0, fakeNetworkBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		fmt.Println("up")
		<-usr1
		if err := syscall.Munmap(mem); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		fmt.Println("released")
		select {}
	case "lines", "report", "vmmfail":
		status := 1
		if s := os.Getenv("BENCH_STATUS"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		r.Phases[PhaseVMCreated] = MonoNow()
		r.Phases[PhaseFirstRun] = MonoNow()
		fmt.Print("hello\r\n")
		if err := holdForSample(*settledFD, []byte{SettledReleased}, time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "settled:", err)
			return 4
		}
		time.Sleep(fakeDelay)
		fmt.Print("marker: ready\r\n")
		// smolvmm records its guest's exit however the run ended.
		r.Phases[PhaseGuestExit] = MonoNow()
		if mode == "report" {
			r.GuestStatus = &status
		}
		if mode != "lines" {
			if err := WriteChildReport(*report, r); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 4
			}
		}
		return status
	case "port":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("booting")
		time.Sleep(fakeDelay)
		ln, err := net.Listen("tcp", os.Getenv("BENCH_ADDR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		defer ln.Close()
		return serveUntilStopped(term)
	case "fwd":
		return fakeForward(r, *report)
	case "portready", "portreadyserve", "portreadyline":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		mem, err := fakeGuestRAM()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		touchFakeGuest(mem)
		// The guest's boot-timer write, as smolvmm reports it; first-run
		// takes the same time, for the test to find it in the phases.
		at := MonoNow()
		r.Phases[PhaseFirstRun], r.Phases[PhaseReady] = at, at
		if *readyFD > 2 {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], uint64(at))
			os.NewFile(uintptr(*readyFD), "ready").Write(b[:])
		}
		fmt.Print("booting\r\n")
		if err := holdForSample(*settledFD, []byte{SettledReleased}, time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "settled:", err)
			return 4
		}
		if mode == "portreadyserve" {
			return fakeServeUntilTerm(term, r, *report, true)
		}
		time.Sleep(3 * fakeDelay)
		fmt.Print("marker: ready\r\n")
		if mode == "portreadyline" {
			return fakeServeUntilTerm(term, r, *report, true)
		}
		r.Phases[PhaseGuestExit] = MonoNow()
		status := 0
		r.GuestStatus = &status
		if *report != "" {
			if err := WriteChildReport(*report, r); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 4
			}
		}
		return 0
	case "readyfd", "notready":
		fmt.Println("booting")
		time.Sleep(fakeDelay)
		if mode == "readyfd" {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], uint64(MonoNow()))
			os.NewFile(uintptr(*readyFD), "ready").Write(b[:])
		}
		time.Sleep(fakeDelay)
		return 0
	case "vmmready", "vmmreadyline":
		return fakeVMMReady(mode, r, *report, *settledFD, *readyFD)
	case "vmmreadyserve", "vmmreadytouch", "vmmunreadyserve", "vmmreadylateline":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		var mem []byte
		if mode == "vmmreadytouch" {
			var err error
			if mem, err = fakeGuestRAM(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 4
			}
		}
		r.Phases[PhaseFirstRun] = MonoNow()
		if mode == "vmmunreadyserve" {
			fmt.Print("resumed\r\n")
			return fakeServeUntilTerm(term, r, *report, false)
		}
		r.Phases[PhaseReady] = r.Phases[PhaseFirstRun]
		if *readyFD > 2 {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], uint64(r.Phases[PhaseReady]))
			os.NewFile(uintptr(*readyFD), "ready").Write(b[:])
		}
		if mem != nil {
			time.Sleep(fakeDelay)
			touchFakeGuest(mem)
		}
		fmt.Print("resumed\r\n")
		if mode == "vmmreadylateline" {
			// Its ready line comes only as it is stopped, as a
			// restored guest's did on a loaded host.
			late := make(chan os.Signal, 1)
			go func(term <-chan os.Signal) {
				sig := <-term
				fmt.Print("marker: ready\r\n")
				late <- sig
			}(term)
			term = late
		}
		return fakeServeUntilTerm(term, r, *report, false)
	case "vmmreadysilent":
		return fakeVMMReadySilent(r, *report, *settledFD, *readyFD)
	case "onefails", "onecrashes":
		if createdFirst(os.Getenv("BENCH_ONCE")) {
			if mode == "onecrashes" {
				fakeCrash()
			}
			fmt.Fprintln(os.Stderr, "no room for this one")
			return 3
		}
		fallthrough
	case "memory", "settles", "unsettled", "settleslate", "settlesmapped":
		mem, err := fakeGuestRAM()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		touchFakeGuest(mem)
		resumed := make(chan os.Signal, 1)
		signal.Notify(resumed, syscall.SIGCONT)
		fmt.Println("touched " + strconv.Itoa(fakeTouched))
		if p := os.Getenv("BENCH_RESUMED"); p != "" && !createdFirst(p) {
			select {
			case <-resumed:
			case <-time.After(time.Minute):
			}
		}
		if os.Getenv("BENCH_HOLD") != "" {
			time.Sleep(time.Minute)
			return 0
		}
		if mode == "memory" {
			if err := holdForSample(*settledFD, []byte{SettledReleased}, time.Minute); err != nil {
				fmt.Fprintln(os.Stderr, "settled:", err)
				return 4
			}
		}
		if mode == "settleslate" {
			time.Sleep(fakeSettleLate)
		} else {
			time.Sleep(fakeDelay)
		}
		if mode == "memory" {
			return 0
		}
		if mode == "settles" || mode == "settleslate" || mode == "settlesmapped" {
			for i := fakeTouched; i < 2*fakeTouched; i += 4096 {
				mem[i] = 1
			}
			f := os.NewFile(uintptr(*settledFD), "settled")
			msg := []byte{SettledReleased}
			if mode == "settlesmapped" {
				msg = append([]byte{SettledMapped}, "traced by PID 7\x1b[2J"...)
			}
			if _, err := f.Write(msg); err != nil {
				fmt.Fprintln(os.Stderr, "settled:", err)
				return 4
			}
		}
		time.Sleep(10 * fakeDelay)
		return 0
	case "silent":
		fmt.Fprintln(os.Stderr, "boom")
		return 3
	case "crash": // a guest that printed, then crashed, as smolvmm's status 2
		fmt.Println("up")
		fmt.Fprintln(os.Stderr, "the guest crashed: triple fault")
		return 2
	case "serve", "stuck":
		term := make(chan os.Signal, 1)
		if mode == "serve" {
			signal.Notify(term, syscall.SIGTERM)
		} else {
			signal.Ignore(syscall.SIGTERM)
		}
		if _, err := fakeGuestRAM(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		r.Phases[PhaseFirstRun] = MonoNow()
		fmt.Print("hello\r\n")
		fmt.Print("marker: ready\r\n")
		return fakeServeUntilTerm(term, r, *report, true)
	case "slowexit":
		signal.Ignore(syscall.SIGTERM)
		r.Phases[PhaseFirstRun] = MonoNow()
		// Its guest ends with its line, timed before it is printed:
		// timed after, on a loaded host, the fake could be descheduled
		// past the bench's stop, and its guest ended after the stop.
		r.Phases[PhaseGuestExit] = MonoNow()
		r.Phases[PhaseClosed] = MonoNow()
		fmt.Print("marker: ready\r\n")
		guest := 1
		r.GuestStatus = &guest
		time.Sleep(4 * fakeDelay)
		if *report != "" {
			if err := WriteChildReport(*report, r); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 4
			}
		}
		return 1
	case "bench":
		return fakeBench() // limits_test.go
	case "bootbench":
		return fakeBootBench() // limits_test.go
	case "threads":
		return fakeThreadsVM() // limits_test.go
	case "nprocbench":
		return fakeNprocBench() // limits_test.go
	case "reserve":
		return fakeReserve() // limits_test.go
	case "readylate":
		if err := os.WriteFile(os.Getenv("BENCH_PIDFILE"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		fmt.Print("booting\r\n")
		time.Sleep(fakeReadyLate)
		fmt.Print("marker: ready\r\n")
		time.Sleep(time.Minute)
		return 0
	case "readyahead":
		fmt.Print("booting\r\n")
		// Its report counts from its first console byte: it waits until
		// the bench has read that byte (the pipe is empty), and a little more.
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			// TIOCINQ is Linux's FIONREAD: the bytes in the pipe.
			if n, err := unix.IoctlGetInt(1, unix.TIOCINQ); err != nil || n == 0 {
				break
			}
		}
		time.Sleep(fakeDelay)
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(MonoNow()+time.Minute.Nanoseconds()))
		os.NewFile(uintptr(*readyFD), "ready").Write(b[:])
		time.Sleep(fakeDelay)
		return 0
	case "hang":
		fmt.Println("hanging")
		time.Sleep(time.Minute)
		return 0
	case "hog": // a VMM whose guest RAM grows until the OOM killer takes it
		for total := int64(0); total < 8<<30; total += 16 << 20 {
			mem, err := syscall.Mmap(-1, 0, 16<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 4
			}
			for i := 0; i < len(mem); i += 4096 {
				mem[i] = 1
			}
		}
		fmt.Fprintln(os.Stderr, "8 GiB touched, not killed")
		return 6
	case "threadfail": // a VMM whose runtime found no thread to create once it had printed
		fmt.Println("up")
		fmt.Fprintln(os.Stderr, "runtime: failed to create new OS thread (have 7 already; errno=11)")
		fmt.Fprintln(os.Stderr, "fatal error: newosproc")
		return 2
	}
	fmt.Fprintln(os.Stderr, "unknown fake mode", mode)
	return 5
}

// fakeServeUntilTerm runs until term (a minute at most: status 0), then
// writes r with its guest-exit (and closed, with closed) to report when
// given and returns 130, as smolvmm stopped by SIGTERM.
func fakeServeUntilTerm(term <-chan os.Signal, r ChildReport, report string, closed bool) int {
	select {
	case <-term:
	case <-time.After(time.Minute):
		return 0
	}
	r.Phases[PhaseGuestExit] = MonoNow()
	if closed {
		r.Phases[PhaseClosed] = MonoNow()
	}
	if report != "" {
		if err := WriteChildReport(report, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
	}
	return 130
}

// fakeVMMReady is the vmmready and vmmreadyline modes: a VMM that reports
// its guest ready itself, on -ready-fd and in its report.
func fakeVMMReady(mode string, r ChildReport, report string, settledFD, readyFD int) int {
	// It ends by itself once the bench has read its memory: a stop that
	// comes first must not cost its report.
	signal.Ignore(syscall.SIGTERM)
	mem, err := fakeGuestRAM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	touchFakeGuest(mem)
	r.Phases[PhaseFirstRun] = MonoNow()
	r.Phases[PhaseReady] = r.Phases[PhaseFirstRun]
	if readyFD > 2 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(r.Phases[PhaseReady]))
		os.NewFile(uintptr(readyFD), "ready").Write(b[:])
	}
	fmt.Print("resumed\r\n")
	if mode == "vmmreadyline" {
		fmt.Print("marker: ready\r\n")
	}
	time.Sleep(fakeDelay)
	if settledFD > 2 {
		var settled []byte
		if mode == "vmmready" {
			for i := fakeTouched; i < 2*fakeTouched; i += 4096 {
				mem[i] = 1
			}
			settled = []byte{1}
		}
		// As smolvmm: the memory stays until the bench has read it.
		if err := holdForSample(settledFD, settled, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "settled:", err)
			return 4
		}
	}
	r.Phases[PhaseGuestExit] = MonoNow()
	if report != "" {
		if err := WriteChildReport(report, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
	}
	return 0
}

// fakeVMMReadySilent is the vmmreadysilent mode: a restored service at
// its prompt, ready at its first instruction, that prints nothing.
func fakeVMMReadySilent(r ChildReport, report string, settledFD, readyFD int) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	mem, err := fakeGuestRAM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	r.Phases[PhaseFirstRun] = MonoNow()
	r.Phases[PhaseReady] = r.Phases[PhaseFirstRun]
	if readyFD > 2 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(r.Phases[PhaseReady]))
		os.NewFile(uintptr(readyFD), "ready").Write(b[:])
	}
	time.Sleep(fakeDelay)
	touchFakeGuest(mem)
	if settledFD > 2 {
		if _, err := os.NewFile(uintptr(settledFD), "settled").Write([]byte{SettledReleased}); err != nil {
			fmt.Fprintln(os.Stderr, "settled:", err)
			return 4
		}
	}
	return fakeServeUntilTerm(term, r, report, false)
}

// createdFirst creates the file path and reports whether this call did.
func createdFirst(path string) bool {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// holdForSample writes settled (if any) to the settled descriptor fd and
// waits for EOF there, patience at most: the bench closes its end once it
// has read the process's memory, so that the process is still there to be
// stopped and read, however late the bench comes. Without the descriptor
// (fd 2 or less: a boot not sampled) there is nothing to wait for.
func holdForSample(fd int, settled []byte, patience time.Duration) error {
	if fd <= 2 {
		return nil
	}
	_ = syscall.SetNonblock(fd, true) // for the read's deadline
	f := os.NewFile(uintptr(fd), "settled")
	if len(settled) > 0 {
		if _, err := f.Write(settled); err != nil {
			return err
		}
	}
	_ = f.SetReadDeadline(time.Now().Add(patience))
	_, _ = f.Read(make([]byte, 1))
	return nil
}

// fakeCrash crashes the Go runtime as a VMM's can, its cause first and
// then kilobytes of goroutine stacks on stderr.
func fakeCrash() {
	debug.SetTraceback("all")
	for range 40 {
		go func() { select {} }()
	}
	runtime.Gosched()
	panic("fake VMM crash")
}

// fakeForward is the fwd mode: the service behind a user-network forward.
func fakeForward(r ChildReport, report string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	port, err := strconv.ParseUint(os.Getenv("BENCH_PORT"), 10, 16)
	if err != nil {
		fmt.Fprintln(os.Stderr, "BENCH_PORT:", err)
		return 4
	}
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	fwd := netback.Forward{Proto: "tcp", HostAddr: netback.DefaultForwardAddr, HostPort: uint16(port), GuestPort: 80}
	u, err := netback.NewUser(mac, []netback.Forward{fwd})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	w := &resetWatch{Backend: u, port: 80, reset: make(chan int64, 1)}
	g, err := stackguest.New(w, stackguest.Config{MAC: mac, Addr: netip.PrefixFrom(netback.UserGuest, 24), Gateway: netback.UserGateway})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	defer g.Close()
	fmt.Println("booting")
	time.Sleep(fakeDelay)
	// Not before a connection the forwarder accepted has been refused:
	// then the bench has met one that it must not count, whatever the
	// load, and the test knows when.
	status := 130
	select {
	case refused := <-w.reset:
		if err := os.WriteFile(os.Getenv("BENCH_REFUSED"), []byte(strconv.FormatInt(refused-r.Phases[PhaseRuntime], 10)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		ln, err := g.ListenTCP(80)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		status = serveUntilStopped(term)
	case <-term: // the bench counted a connection the guest never took
	}
	if err := WriteChildReport(report, r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	return status
}

// resetWatch is a guest's backend that sends the CLOCK_MONOTONIC time of
// the guest's first TCP reset from port (a connection refused there) on
// reset.
type resetWatch struct {
	netback.Backend
	port  uint16
	once  sync.Once
	reset chan int64
}

// WriteFrame implements netback.Backend.
func (w *resetWatch) WriteFrame(f []byte) error {
	const eth = netback.EthernetHeaderSize
	if len(f) >= eth+20 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[eth+9] == 6 {
		if h := eth + int(f[eth]&15)*4; len(f) >= h+14 && binary.BigEndian.Uint16(f[h:]) == w.port && f[h+13]&0x04 != 0 {
			at := MonoNow()
			w.once.Do(func() { w.reset <- at })
		}
	}
	return w.Backend.WriteFrame(f)
}

// serveUntilStopped keeps a fake service up until the bench stops it
// (SIGTERM on term, once it has seen it ready), as a guest's service
// runs: one that went away after a set time was gone before a bench
// starved of the CPU for longer (half a second, on a loaded host) had
// held a connection to it for portready.Hold, and the boot was not
// ready. A minute at most, should the bench be gone.
func serveUntilStopped(term <-chan os.Signal) int {
	select {
	case <-term:
		return 130
	case <-time.After(time.Minute):
		return 0
	}
}

// fakeGuestRAM maps a fake guest's RAM MAP_NORESERVE, as smolvmm maps
// guest RAM: a mapping the Go runtime's own anonymous mappings cannot
// merge with when they come next to it, which would change its size.
func fakeGuestRAM() ([]byte, error) {
	return syscall.Mmap(-1, 0, fakeGuestBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
}

// touchFakeGuest writes the pages of mem a fake guest uses.
func touchFakeGuest(mem []byte) {
	for i := 0; i < fakeTouched; i += 4096 {
		mem[i] = 1
	}
}
