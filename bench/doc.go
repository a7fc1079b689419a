// Package bench measures boot-to-service time and VMM memory overhead by
// booting a VM many times, each boot in a fresh process, and summarises,
// compares and draws the results.
//
// A boot is a Target (a program and its arguments: smolvmm re-executing
// itself, or qemu-system-i386) started by RunBoot. Times are measured from
// just before the process is started ("process start"): the bench itself
// sees the first byte on the VMM's standard output (the guest's serial
// console), the ready condition (a regular expression on a console line,
// or a TCP connect that succeeds) and the process's exit. A Target that
// reports its own phases (smolvmm does, through a ChildReport file) adds
// them on the same clock (CLOCK_MONOTONIC, shared by every process), and
// one with a Target.ReadyFlag reports its own ready while it runs
// (smolvmm: the guest wrote its boot-timer port): the boot is ready at
// the earlier of that and the ready condition.
// A guest that has not ended by itself BootOptions.ExitWait after the
// bench saw it ready (a system at its login prompt) is stopped there:
// its boot ends at the ready event, with PhaseStopped.
//
// A ready port (Ready.Addr) is polled with TCP connects every millisecond;
// the first connection that the peer answers or keeps open for 100 ms marks
// the guest ready, at the time it connected. The hold is for user-network
// port forwards (smolvmm's netback, QEMU's hostfwd): they accept on the host
// at once and close the connection when the guest refuses it. One case
// remains: a guest whose network stack does not answer at all (before its
// interface is up) leaves the forwarder retrying with the connection open,
// which counts as ready.
//
// Memory is sampled once per system, in an extra boot that is not timed:
// the process is stopped (SIGSTOP) at the ready event, or at the first
// console byte without a ready condition, its /proc/PID/smaps is read, and it is
// continued. The overhead is the resident memory outside the guest's RAM
// mapping (the anonymous mapping at the address the VMM said on its
// Target.SettledFlag socket, else the one of exactly the guest's size, for
// smolvmm and QEMU alike; for a restore, Target.GuestFile's private mapping, of
// which the pages mapped since the restore (those touched and those the
// kernel mapped around them) and written are reported too).
//
// Results is the JSON document (its schema is the Go type, with the
// version in SchemaVersion); WriteSVG draws it and WriteText prints it.
package bench
