package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/testsock"
)

// runCLI runs smolvmm with args and returns stdout, stderr and the exit
// status.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCLIIn(t, "", args...) // snapshotsafe_test.go
}

// TestCLISnapshotRestore: run --snapshot --snapshot-exit stops the
// counter guest at its ready point, and run --restore continues it from
// the next count, with the restore's phases in --timings.
func TestCLISnapshotRestore(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "counter.snap")
	out, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=120 at=100", "--net", "none",
		"--snapshot", snap, "--snapshot-exit", "-v")
	if status != 0 || !strings.HasSuffix(out, "count 99\r\ncount 100\r\n") {
		t.Fatalf("snapshot run: status %d, output ends %q, stderr:\n%s", status, out[max(0, len(out)-40):], stderr)
	}
	if !strings.Contains(stderr, "smolvmm: snapshot "+snap+": 16.0 MiB written") || !strings.Contains(stderr, "guest snapshot") {
		t.Errorf("snapshot run's stderr lacks the snapshot or the exit reason:\n%s", stderr)
	}
	var want strings.Builder
	for i := 101; i <= 120; i++ {
		want.WriteString("count " + strconv.Itoa(i) + "\r\n")
	}
	want.WriteString("counter: done\r\n")
	for i := range 2 {
		out, stderr, status = runCLI(t, "run", "--restore", snap, "--net", "none", "--timings")
		if status != 1 || out != want.String() {
			t.Fatalf("restore %d: status %d (want 1, debug-exit 0), output %q, want %q\nstderr:\n%s", i, status, out, want.String(), stderr)
		}
		for _, phase := range []string{"snapshot-loaded", "vm-created", "devices-created", "state-restored", "first-run", "ready", "exit"} {
			if !strings.Contains(stderr, "  "+phase+" ") {
				t.Errorf("restore --timings lacks %s:\n%s", phase, stderr)
			}
		}
	}
}

// TestCLISnapshotRefusals: the snapshot flags' mistakes and a snapshot
// that never happened, with nothing left behind.
func TestCLISnapshotRefusals(t *testing.T) {
	notSnap := filepath.Join(t.TempDir(), "not.snap")
	shareDir := t.TempDir()
	if err := os.WriteFile(notSnap, []byte("hello, this is not a snapshot at all, but long enough for a header......................................................................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		want   string
		kvm    bool
	}{
		{"snapshot-exit alone", []string{"run", "-k", "x", "--snapshot-exit"}, 2, "--snapshot-exit without --snapshot FILE", false},
		{"restore and kernel", []string{"run", "-k", "x", "--restore", notSnap}, 2, "give one of them", false},
		{"not a snapshot", []string{"run", "--restore", notSnap, "--net", "none"}, 1, "not a smolvmm snapshot: bad magic", true},
		{"missing", []string{"run", "--restore", notSnap + ".missing", "--net", "none"}, 1, "no such file", true},
		// A share's image is removed as the guest starts: a snapshot
		// would record a disk no restore can open.
		{"share", []string{"run", "-k", "x", "--share", shareDir + ",ro", "--snapshot", filepath.Join(shareDir, "s.snap")}, 2,
			"--snapshot " + filepath.Join(shareDir, "s.snap") + " and --share " + shareDir + ",ro: a share is an image built from the directory for this run and removed as the guest starts, which no restore could open; make the directory a disk image of its own (smolvmm mkimg --data " + shareDir + " -i IMAGE) and give it with -d IMAGE,ro instead", false},
		{"share, writable", []string{"run", "-k", "x", "--share", shareDir, "--snapshot", filepath.Join(shareDir, "s.snap")}, 2,
			"-i IMAGE) and give it with -d IMAGE instead", false},
		{"share, up", []string{"up", "--share", shareDir, "--snapshot", filepath.Join(shareDir, "s.snap"), "rescue"}, 2, "a share is an image built from the directory for this run", false},
		// A snapshot has no share (--snapshot refuses one), so a
		// share's image was a disk too many, refused after it was
		// built with advice naming the removed temporary image.
		{"restore with share", []string{"run", "--restore", notSnap, "--share", shareDir + ",ro"}, 2,
			"--restore " + notSnap + " and --share " + shareDir + ",ro: a restored VM has the disks its snapshot recorded, and a snapshot has no share (--snapshot refuses --share); drop --share (for a directory in a restored VM, make it an image, smolvmm mkimg --data " + shareDir + " -i IMAGE, give it with -d IMAGE,ro to the run that takes the snapshot, and restore that snapshot)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kvm && !kvmUsable() {
				t.Skip("needs /dev/kvm")
			}
			_, stderr, status := runCLI(t, tt.args...)
			if status != tt.status || !strings.Contains(stderr, tt.want) {
				t.Fatalf("status %d, stderr %q; want %d and %q", status, stderr, tt.status, tt.want)
			}
		})
	}
	// A snapshot never taken leaves no file, with or without the
	// seccomp filter. (Status 1 is the counter's debug-exit 0; the note
	// is a warning: TestCLISnapshotNotTaken.)
	for _, seccomp := range []bool{false, true} {
		t.Run(map[bool]string{false: "never ready without filter", true: "never ready with filter"}[seccomp], func(t *testing.T) {
			if !kvmUsable() {
				t.Skip("needs /dev/kvm")
			}
			dir := t.TempDir()
			snap := filepath.Join(dir, "never.snap")
			args := []string{"run", "-k", guests.ForTest(t, "counter"), "-m", "16", "-a", "n=3 at=0", "--net", "none", "--snapshot", snap}
			if !seccomp {
				args = append(args, "--no-seccomp")
			}
			_, stderr, status := runCLI(t, args...)
			if status != 1 || !strings.Contains(stderr, "the guest never became ready, so no snapshot was taken") {
				t.Fatalf("status %d, stderr %q", status, stderr)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("left behind: %q", names)
			}
		})
	}
}

// TestEscapeSnapshotKey: Ctrl-A s asks for a snapshot and reaches the
// guest as nothing; other bytes pass.
func TestEscapeSnapshotKey(t *testing.T) {
	n := 0
	e := &escapeReader{r: strings.NewReader("a\x01sb\x01S"), snapshot: func() { n++ }, quit: func() bool { return true }}
	got, err := io.ReadAll(e)
	if err != nil || string(got) != "ab" || n != 2 {
		t.Fatalf("read %q, %v, %d snapshots; want \"ab\" and 2", got, err, n)
	}
}

// TestCLIBenchRestore: bench --restore times restores, with their phases,
// and --compare boot the cold boot beside them.
func TestCLIBenchRestore(t *testing.T) {
	if _, stderr, status := runCLI(t, "bench", "--compare", "boot"); status != 2 || !strings.Contains(stderr, "give --restore FILE") {
		t.Fatalf("--compare boot alone: status %d, %q", status, stderr)
	}
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	snap := filepath.Join(t.TempDir(), "demo.snap")
	demo := filepath.Join(t.TempDir(), "demo.elf")
	if err := os.WriteFile(demo, guests.Demo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, status := runCLI(t, "run", "-k", demo, "-m", "16", "--net", "none", "--ready", "^smolvmm-demo: hello", "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("demo --snapshot: status %d\n%s", status, stderr)
	}
	js := filepath.Join(t.TempDir(), "r.json")
	out, stderr, status := runCLI(t, "bench", "--restore", snap, "--net", "none", "-n", "2", "--warmup", "0", "--compare", "boot",
		"--ready", "^smolvmm-demo: hello", "--json", js)
	if status != 0 {
		t.Fatalf("bench --restore: status %d\n%s\n%s", status, out, stderr)
	}
	// The snapshot's 16 MiB, not -m's default.
	if res := readBenchJSON(t, js); res.Config.MemoryMiB != 16 {
		t.Errorf("config.memory_mib %d, want the snapshot's 16", res.Config.MemoryMiB)
	}
	for _, want := range []string{", 16 MiB, ms since process start", "smolvmm-restore\n", "snapshot-loaded", "state-restored", "smolvmm / smolvmm-restore"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	// In parallel too: the restored guest does not print its ready line
	// again, the VMM reports it ready.
	out, stderr, status = runCLI(t, "bench", "--restore", snap, "--net", "none", "--parallel", "2", "--ready", "^smolvmm-demo: hello")
	if status != 0 || !strings.Contains(out, "started 2, failed 0") || !strings.Contains(out, "16 MiB each") {
		t.Errorf("bench --restore --parallel 2 --ready: status %d\n%s\n%s", status, out, stderr)
	}
	if _, stderr, status := runCLI(t, "bench", "--restore", snap, "-m", "32", "--net", "none"); status != 2 || !strings.Contains(stderr, "holds 16 MiB") {
		t.Errorf("bench --restore with another -m: status %d, %q", status, stderr)
	}
}

// TestCLIBenchRestoreService: a service snapshotted once ready, restored
// by bench with a ready line it never prints again and a guest that never
// exits (the counter spinning after its ready write), is ready at once and
// stopped a second later, not run until the timeout.
func TestCLIBenchRestoreService(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "spin.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-a", "counter spin", "-m", "16", "--net", "none", "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("counter --snapshot: status %d\n%s", status, stderr)
	}
	out, stderr, status := runCLI(t, "bench", "--restore", snap, "--net", "none", "-n", "1", "--warmup", "0", "--ready", "^never printed", "--timeout", "30s")
	if status != 0 || !strings.Contains(out, "stopped at ready") {
		t.Errorf("bench --restore of a service: status %d\n%s\n%s", status, out, stderr)
	}
	// Said, not left for a ready the line never gave (it read as if
	// --ready had been met).
	if want := "smolvmm bench: smolvmm-restore: in 1 of 1 rounds the restored guest printed no line --ready \"^never printed\" matches: those restores were ready at their first instruction, as the snapshot was taken once its guest was ready\n"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// TestCLIRestoreMAC: a restore without --mac gives the network card the
// snapshot's address (the snapshot VM had a disk, whose path made it; the
// restore has none to derive one from), and --mac gives a clone another:
// the guest reads it from its card and the user network leases the
// guest's address to it. A bad --mac is a command-line mistake.
func TestCLIRestoreMAC(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vnet")
	dir := t.TempDir()
	snap, disk := filepath.Join(dir, "vnet.snap"), filepath.Join(dir, "d.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	const a, b = "52:54:00:aa:00:01", "52:54:00:bb:00:02"
	out, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "clone", "-d", disk+",ro", "--mac", a,
		"--snapshot", snap, "--snapshot-exit")
	if status != 0 {
		t.Fatalf("snapshot run: status %d, output %q, stderr:\n%s", status, out, stderr)
	}
	before, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		// Told to read the link again, as every restored driver that
		// negotiated STATUS is (vmm's TestRestoreTellsLink).
		{"snapshot's address", nil, 1, []string{"vnet: after ready mac " + a + " config-change 1\r\n", "vnet: dhcp offer 10.0.2.15 for " + a + "\r\n"}},
		{"clone", []string{"--mac", b}, 1, []string{"vnet: after ready mac " + b + " config-change 1\r\n", "vnet: dhcp offer 10.0.2.15 for " + b + "\r\n"}},
		{"multicast", []string{"--mac", "01:00:5e:00:00:01"}, 2, []string{"--mac: bad MAC address \"01:00:5e:00:00:01\": a multicast address"}},
		// -v says what the restore did, as a boot's says what it loaded.
		{"verbose", []string{"-v"}, 1, []string{"smolvmm: restored " + snap + ": 16 MiB of guest memory mapped copy-on-write, boot protocol multiboot, ld0 " + disk + " (read-only) as the snapshot saw it\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, status := runCLI(t, append([]string{"run", "--restore", snap}, tt.args...)...)
			if status != tt.status {
				t.Fatalf("status %d, want %d; output %q, stderr:\n%s", status, tt.status, out, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+stderr, w) {
					t.Errorf("lacks %q; output %q, stderr:\n%s", w, out, stderr)
				}
			}
		})
	}
	if after, err := os.ReadFile(snap); err != nil || string(after) != string(before) {
		t.Errorf("the snapshot file changed (%v)", err)
	}
}

// TestReadmeSnapshotCommands runs the README's snapshot and restore
// example as written, in a directory holding the demo guest at the path it
// names: the snapshot is taken with --net none, and the restores, which
// give no --net, take the snapshot's (they were refused for the default
// user network's card).
func TestReadmeSnapshotCommands(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	cmds := readmeSnapshotCommands(t, readme(t))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "guests", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "guests", "bin", "demo.elf"), guests.Demo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range cmds {
		out, stderr, status := runCLIIn(t, dir, args...)
		want := 0
		if args[0] == "run" && slices.Contains(args, "--restore") {
			want = 1 // the demo guest's debug-exit 0, as after a boot
		}
		if status != want || strings.Contains(stderr, "smolvmm run:") || strings.Contains(stderr, "error:") {
			t.Fatalf("smolvmm %s: status %d, want %d; output %q, stderr:\n%s", strings.Join(args, " "), status, want, out, stderr)
		}
		if slices.Contains(args, "--restore") && args[0] == "run" && !strings.Contains(out, "smolvmm-demo: done") {
			t.Errorf("smolvmm %s: the restored demo did not finish; output %q", strings.Join(args, " "), out)
		}
		if args[0] == "bench" && !strings.Contains(out, "smolvmm-restore\n") {
			t.Errorf("smolvmm %s: no restores timed:\n%s", strings.Join(args, " "), out)
		}
	}
}

// readmeSnapshotCommands returns the smolvmm commands of the first sh
// block of the README's snapshot section, split as the shell would (the
// README quotes with single quotes only), without the program's name.
func readmeSnapshotCommands(t *testing.T, text string) [][]string {
	t.Helper()
	_, sec, ok := strings.Cut(text, "\n## Snapshot and restore\n")
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, block, ok2 := strings.Cut(sec, "```sh\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README's snapshot section has no ```sh block")
	}
	var cmds [][]string
	for _, line := range strings.Split(block, "\n") {
		var words []string
		var word strings.Builder
		in, quoted := false, false
		for _, r := range line {
			switch {
			case r == '\'':
				in, quoted = !in, true
			case r == '#' && !in && word.Len() == 0 && !quoted:
				goto done // a comment
			case (r == ' ' || r == '\t') && !in:
				if word.Len() > 0 || quoted {
					words = append(words, word.String())
				}
				word.Reset()
				quoted = false
			default:
				word.WriteRune(r)
			}
		}
	done:
		if word.Len() > 0 || quoted {
			words = append(words, word.String())
		}
		if len(words) == 0 {
			continue
		}
		if words[0] != "smolvmm" {
			t.Fatalf("README's snapshot example: %q is not a smolvmm command", line)
		}
		cmds = append(cmds, words[1:])
	}
	if len(cmds) < 3 {
		t.Fatalf("README's snapshot example has %d commands, want the snapshot, a run --restore and a bench --restore", len(cmds))
	}
	return cmds
}

// TestCLIRestoreNet: a restore without --net takes the snapshot's network
// (none here); a --net whose card the snapshot's VM lacked is refused
// before any network is attached or joined, as is a -p with nothing to
// forward to.
func TestCLIRestoreNet(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	dir := testsock.Dir(t)
	snap := filepath.Join(dir, "counter.snap")
	sock := filepath.Join(dir, "none.sock") // no shared network listens here
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	tests := []struct {
		name   string
		args   []string
		status int
		out    string
		stderr string
	}{
		{"no --net", nil, 1, "count 5\r\ncounter: done\r\n", ""},
		{"--net user", []string{"--net", "user"}, 2, "", "--net user: the VM of --restore " + snap + " had no network card"},
		// Refused before the network is joined: nothing answers on
		// sock, which a join would have reported instead.
		{"--net user:SOCK", []string{"--net", "user:" + sock}, 2, "", "--net user:" + sock + ": the VM of --restore " + snap + " had no network card"},
		{"--net none", []string{"--net", "none"}, 1, "count 5\r\ncounter: done\r\n", ""},
		{"-p", []string{"-p", "8080:80"}, 2, "", "-p 8080:80: the VM of --restore " + snap + " had no network card"},
		// It said "with --net none the guest has no network card", of
		// a --net none never given.
		{"--mac", []string{"--mac", "52:54:00:00:00:09"}, 2, "", "--mac 52:54:00:00:00:09: the VM of --restore " + snap + " had no network card, so there is none to give the address; drop --mac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, status := runCLI(t, append([]string{"run", "--restore", snap}, tt.args...)...)
			if status != tt.status || !strings.HasSuffix(out, tt.out) || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("status %d, output %q, stderr %q; want %d, output ending %q, stderr with %q", status, out, stderr, tt.status, tt.out, tt.stderr)
			}
		})
	}
}

// TestCLIRestoreStop: a restored VM stops as a booted one does: Ctrl-A x
// on its terminal, SIGTERM and SIGINT off one end it with status 130 and
// the reason. The counter guest counts on after its snapshot (to 4e9): it
// is stopped once the restore has printed its first count.
func TestCLIRestoreStop(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	snap := filepath.Join(t.TempDir(), "counter.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=4000000000 at=3", "--net", "none",
		"--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	for _, how := range []string{"Ctrl-A x", "SIGTERM", "SIGINT"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(smolvmmBin(t), "run", "--restore", snap)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			var out io.Reader
			var ptm *os.File
			if how == "Ctrl-A x" {
				var pts *os.File
				ptm, pts = openPTYPair(t)
				cmd.Stdin, cmd.Stdout = pts, pts
				out = ptm
				defer pts.Close()
			} else {
				pipe, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				out = pipe
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if ptm != nil {
				// Only the VMM holds the terminal side now: its end
				// ends the master's reads.
				cmd.Stdin.(*os.File).Close()
			}
			lines := bufio.NewReader(out)
			for {
				l, err := lines.ReadString('\n')
				if err != nil {
					cmd.Wait()
					t.Fatalf("the restored guest never counted on (%v); stderr:\n%s", err, stderr.String())
				}
				if l == "count 4\r\n" {
					break
				}
				if strings.HasPrefix(l, "count ") {
					t.Fatalf("the restore went on from %q, want count 4", l)
				}
			}
			switch how {
			case "Ctrl-A x":
				_, err := ptm.Write([]byte{0x01, 'x'})
				if err != nil {
					t.Fatal(err)
				}
			case "SIGTERM":
				cmd.Process.Signal(syscall.SIGTERM)
			case "SIGINT":
				cmd.Process.Signal(syscall.SIGINT)
			}
			io.Copy(io.Discard, lines) // the counts until it stops (EIO at the terminal's end)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "smolvmm run: guest stopped") {
				t.Fatalf("ended with %v, want status 130 and the reason; stderr:\n%s", err, stderr.String())
			}
		})
	}
}

// freeTCPPort returns a port of 127.0.0.1 that was free a moment ago,
// below the ephemeral range (testsock.Port): one a listen of port 0 gave
// could be taken as an outgoing connection's local port before the VMM
// listened on it.
func freeTCPPort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(int(testsock.Port(t)))
}

// TestCLIRestoreForward: the port forwards of a restored VM are the
// restore's own -p: a connection to the restore's host port reaches the
// restored guest, as a TCP SYN to the restore's guest port (the vnet
// guest prints it; it has no TCP to answer with), not to the snapshot
// run's.
func TestCLIRestoreForward(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "vnet")
	snap := filepath.Join(t.TempDir(), "vnet.snap")
	out, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "clone syn", "-p", freeTCPPort(t)+":81",
		"--snapshot", snap, "--snapshot-exit")
	if status != 0 {
		t.Fatalf("snapshot run: status %d, output %q, stderr:\n%s", status, out, stderr)
	}
	port := freeTCPPort(t)
	cmd := exec.Command(smolvmmBin(t), "run", "--restore", snap, "-p", port+":80")
	var errText strings.Builder
	cmd.Stderr = &errText
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(pipe)
	var got strings.Builder
	var conn net.Conn
	for {
		l, err := lines.ReadString('\n')
		got.WriteString(l)
		if err != nil {
			break
		}
		if l == "vnet: waiting for tcp syn\r\n" {
			// The guest has its network back: connect to the
			// restore's forward.
			if conn, err = net.Dial("tcp", "127.0.0.1:"+port); err != nil {
				t.Errorf("connecting to the restore's forward: %v", err)
			}
		}
	}
	err = cmd.Wait()
	if conn != nil {
		conn.Close()
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(got.String(), " to port 80\r\nvnet: ok\r\n") {
		t.Fatalf("restore ended with %v (want status 1, debug-exit 0); output %q; stderr:\n%s", err, got.String(), errText.String())
	}
}

// TestEarlyRestoreArgs: the restore begun before the flags are parsed
// reads --restore, --kvm-device and --no-verify-memory as urfave/cli would, and begins none
// for another command, without --restore, or with --jail (the jailed
// VMM prepares its own).
func TestEarlyRestoreArgs(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		kvm, path string
		noVerify  bool
	}{
		{[]string{"smolvmm", "run", "--restore", "a.snap"}, "", "a.snap", false},
		{[]string{"smolvmm", "run", "-restore=a.snap", "--kvm-device", "/dev/k"}, "/dev/k", "a.snap", false},
		{[]string{"smolvmm", "run", "-m", "64", "--kvm-device=/dev/k", "--restore", "b"}, "/dev/k", "b", false},
		{[]string{"smolvmm", "run", "--restore", "a.snap", "--no-verify-memory"}, "", "a.snap", true},
		{[]string{"smolvmm", "run", "-no-verify-memory=true", "--restore", "a.snap"}, "", "a.snap", true},
		{[]string{"smolvmm", "run", "--no-verify-memory=false", "--restore", "a.snap"}, "", "a.snap", false},
		{[]string{"smolvmm", "run", "-k", "demo.elf"}, "", "", false},
		{[]string{"smolvmm", "run", "--restore", "a.snap", "--jail"}, "", "", false},
		{[]string{"smolvmm", "bench", "--restore", "a.snap"}, "", "", false},
		{[]string{"smolvmm", "run", "--", "--restore", "a.snap"}, "", "", false},
		{[]string{"smolvmm"}, "", "", false},
	} {
		if kvm, path, noVerify := earlyRestoreArgs(tt.args); kvm != tt.kvm || path != tt.path || noVerify != tt.noVerify {
			t.Errorf("earlyRestoreArgs(%q) = %q, %q, %v; want %q, %q, %v", tt.args, kvm, path, noVerify, tt.kvm, tt.path, tt.noVerify)
		}
	}
}

// TestCLIRestoreDiskSettings: a -d whose read-only setting or serial is
// not the snapshot's is refused with the -d flags that would restore it,
// not the network advice other device differences get; the snapshot's
// settings restore. Flags the snapshot contradicts (-d's options and
// count, -m, --net) are command-line mistakes, status 2, as restoreNet's
// refusal was (they were 1); a disk file the snapshot did not record
// (touched since) stays 1, a file's state.
func TestCLIRestoreDiskSettings(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	dir := t.TempDir()
	snap := filepath.Join(dir, "counter.snap")
	disk := filepath.Join(dir, "a,b.img") // a comma, written twice in -d
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none",
		"-d", strings.ReplaceAll(disk, ",", ",,")+",serial=data1", "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	nodisk := filepath.Join(dir, "nodisk.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none",
		"--snapshot", nodisk, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run without a disk: status %d, stderr:\n%s", status, stderr)
	}
	d := strings.ReplaceAll(disk, ",", ",,")
	if err := os.WriteFile(disk+"2", make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		disk   string
		status int
		stderr string
	}{
		{"read-only", d + ",ro", 2, "read-only, the snapshot's disk read-write (" + disk + ") (give -d as the snapshot's machine had it: -d " + d + ", or leave out -d to take the snapshot's disks)"},
		{"other serial", d + ",serial=data2", 2, `serial "data2", the snapshot's "data1" (` + disk + ") (give -d as the snapshot's machine had it: -d " + d + ",serial=data1, or leave out -d to take the snapshot's disks)"},
		{"as the snapshot's", d, 1, ""},
		// It said "snapshot S has 1 disks, 2 given: invalid
		// configuration": vmm.ErrConfig's text, and no advice.
		{"one disk too many", d + " -d " + d + "2", 2, "smolvmm run: --restore " + snap + ": the snapshot's VM had 1 disk, -d gives 2 (give -d as the snapshot's machine had it: -d " + d + ", or leave out -d to take the snapshot's disks)"},
		{"disk of none", "-d " + d, 2, "smolvmm run: --restore " + nodisk + ": the snapshot's VM had no disk, -d gives 1 (leave out -d)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"run", "--restore", snap, "-d", tt.disk}
			if strings.HasPrefix(tt.disk, "-d ") {
				args = []string{"run", "--restore", nodisk, "-d", strings.TrimPrefix(tt.disk, "-d ")}
			} else if a, b, two := strings.Cut(tt.disk, " -d "); two {
				args = []string{"run", "--restore", snap, "-d", a, "-d", b}
			}
			out, stderr, status := runCLI(t, args...)
			if strings.Contains(stderr, "invalid configuration") {
				t.Errorf("stderr %q shows vmm.ErrConfig's text", stderr)
			}
			if status != tt.status || !strings.Contains(stderr, tt.stderr) || strings.Contains(stderr, "network") {
				t.Fatalf("status %d, output %q, stderr %q; want %d, stderr with %q and no network advice", status, out, stderr, tt.status, tt.stderr)
			}
			if tt.stderr == "" && !strings.HasSuffix(out, "count 5\r\ncounter: done\r\n") {
				t.Fatalf("output %q, want the count to go on to 5", out)
			}
		})
	}
	// Another -m, a network card the snapshot's VM did not have, or
	// none for one that had.
	nic := filepath.Join(dir, "nic.snap")
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--snapshot", nic, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run with a network card: status %d, stderr:\n%s", status, stderr)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"-m", []string{"--restore", snap, "-d", d + ",serial=data1", "-m", "32"}, "smolvmm run: restore: snapshot " + snap + ": snapshot memory size differs: 16 MiB in the snapshot, 32 MiB asked for (drop -m to take the snapshot's memory size, or give -m 16)"},
		{"--net user", []string{"--restore", snap, "-d", d + ",serial=data1", "--net", "user"}, "--net user: the VM of --restore " + snap + " had no network card"},
		{"--net none", []string{"--restore", nic, "--net", "none"}, "the machine's devices differ from the snapshot's"},
	} {
		args := append([]string{"run"}, tt.args...)
		if out, stderr, status := runCLI(t, args...); status != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: status %d, output %q, stderr %q; want 2 and %q", tt.name, status, out, stderr, tt.want)
		}
	}
	// Without -d, the snapshot's path opens only the file it recorded,
	// unchanged: touched, the image is to be given with -d (it then
	// restores, its content the snapshot's).
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(disk, later, later); err != nil {
		t.Fatal(err)
	}
	out, stderr, status := runCLI(t, "run", "--restore", snap)
	want := "(without -d, a snapshot's disk paths are opened only while they name the very files it recorded; to restore against the file there, or a copy of the image, give -d FILE for each of the snapshot's disks, in order: -d " + d + " with your files' paths (its content is then checked))"
	if status != 1 || !strings.Contains(stderr, "the path does not name the file the snapshot recorded") || !strings.Contains(stderr, want) {
		t.Fatalf("touched image, no -d: status %d, output %q, stderr %q; want 1, stderr with %q", status, out, stderr, want)
	}
	if out, stderr, status := runCLI(t, "run", "--restore", snap, "-d", d+",serial=data1"); status != 1 || stderr != "" || !strings.HasSuffix(out, "count 5\r\ncounter: done\r\n") {
		t.Fatalf("touched image given with -d: status %d, output %q, stderr %q; want the count to go on to 5", status, out, stderr)
	}
}

// TestCLIRestoreSnapshotOwner: without -d, a snapshot another user owns,
// or one its group may write, is refused, naming the file, its owner or
// mode and its disk, with advice to give -d FILE for each disk (its own
// paths not offered as flags); with -d the same image restores, as does
// the snapshot of this user without -d. One owned by the user the
// restore's --user or --uid drops to (as a --user run's snapshots are)
// is refused too, the advice then saying why, its disks still FILE in
// the -d flags: it offered the paths the snapshot records, which a guest
// that took over the VMM could have chosen, ready to paste.
func TestCLIRestoreSnapshotOwner(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel := guests.ForTest(t, "counter")
	dir := t.TempDir()
	snap := filepath.Join(dir, "counter.snap")
	disk := filepath.Join(dir, "data.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, status := runCLI(t, "run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none",
		"-d", disk+",ro", "--snapshot", snap, "--snapshot-exit"); status != 0 {
		t.Fatalf("snapshot run: status %d, stderr:\n%s", status, stderr)
	}
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	advice := "(a snapshot's own disk paths are used only when you or root own it and no one else may write it; give -d FILE for each disk, in order, the images you mean it to use: -d FILE,ro (their content is then checked))"
	userAdvice := func(who string) string {
		return "(a run with " + who + " writes its snapshots as uid 65534, who owns this one: a VMM its guest took over could have written it, so its own disk paths are not used; give -d FILE for each disk, in order, the images you mean it to use, those it names if they are: -d FILE,ro (their content is then checked))"
	}
	tests := []struct {
		name   string
		uid    int // -1: this user
		mode   os.FileMode
		args   []string // the restore's flags beside --restore
		stderr string   // "" when restored
		advice string
	}{
		{"yours", -1, 0o600, nil, "", ""},
		{"another user's", 65534, 0o600, nil, "is owned by uid 65534, neither this process's user (uid " + strconv.Itoa(os.Geteuid()) + ") nor root", advice},
		{"group-writable", -1, 0o660, nil, "(owner uid " + strconv.Itoa(os.Geteuid()) + ", mode 0660) is writable by its group", advice},
		{"--user's", 65534, 0o600, []string{"--user", "65534"}, "is owned by uid 65534, neither this process's user (uid 0) nor root", userAdvice("--user 65534")},
		{"--uid's", 65534, 0o600, []string{"--uid", "65534", "--gid", "65534"}, "is owned by uid 65534, neither this process's user (uid 0) nor root", userAdvice("--uid 65534")},
		{"not --user's", 65533, 0o600, []string{"--user", "65534"}, "is owned by uid 65533, neither this process's user (uid 0) nor root", advice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid >= 0 && os.Geteuid() != 0 {
				t.Skip("needs root to give the snapshot another owner")
			}
			path := filepath.Join(t.TempDir(), "s.snap")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.uid >= 0 {
				if err := os.Chown(path, tt.uid, -1); err != nil {
					t.Fatal(err)
				}
			}
			out, stderr, status := runCLI(t, append([]string{"run", "--restore", path}, tt.args...)...)
			if tt.stderr == "" {
				if status != 1 || stderr != "" || !strings.HasSuffix(out, "count 5\r\ncounter: done\r\n") {
					t.Fatalf("status %d, output %q, stderr %q; want the count to go on to 5", status, out, stderr)
				}
				return
			}
			want := "smolvmm run: restore: snapshot " + path + " " + tt.stderr + ": its disk paths are not taken from a snapshot another user could have written (it names " + disk + ") " + tt.advice
			if status != 1 || !strings.Contains(stderr, want) {
				t.Fatalf("no -d: status %d, output %q, stderr %q; want 1, stderr with %q", status, out, stderr, want)
			}
			if out, stderr, status := runCLI(t, append([]string{"run", "--restore", path, "-d", disk + ",ro"}, tt.args...)...); status != 1 || stderr != "" || !strings.HasSuffix(out, "count 5\r\ncounter: done\r\n") {
				t.Fatalf("with -d: status %d, output %q, stderr %q; want the count to go on to 5", status, out, stderr)
			}
		})
	}
}

// TestCLISnapshotStickyOther: --snapshot on a file another user owns, in a
// sticky directory (as /tmp) of a third's, was accepted at start and
// failed only once the snapshot was renamed over it, after the boot
// ("rename ...: operation not permitted"; for up, after the download and
// the build): the check ran only for the user of --user. It is refused at
// start, status 1, for this process's user; that user's own file there is
// taken, as is another's in a directory that is not sticky.
func TestCLISnapshotStickyOther(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run smolvmm as one user on a file of another's")
	}
	const uid, other = 61238, 61239 // no one's
	dir, exe, tmp := binForOthers(t)
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, 65534); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain") // open to all, not sticky
	if err := os.Mkdir(plain, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(plain, 0o777); err != nil {
		t.Fatal(err)
	}
	file := func(dir, name string, owner int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, owner, 65534); err != nil {
			t.Fatal(err)
		}
		return p
	}
	others := file(tmp, "other.snap", other)
	own := file(tmp, "own.snap", uid)
	plainOther := file(plain, "other.snap", other)
	refused := "--snapshot " + others + " belongs to uid 61239, in " + tmp + ", a sticky directory (as /tmp) of uid 0's: only the file's owner, the directory's and root may replace the file"
	// The kernel is missing, the mirror unreachable: what is said first
	// tells whether the snapshot's file was checked before them.
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"run, another's file", []string{"run", "-k", "/nonexistent", "--snapshot", others}, refused},
		{"up, another's file", []string{"up", "--mirror", "http://127.0.0.1:1/pub", "--snapshot", others, "rescue"}, refused},
		{"run, own file", []string{"run", "-k", "/nonexistent", "--snapshot", own}, "/nonexistent"},
		{"run, another's file not in a sticky directory", []string{"run", "-k", "/nonexistent", "--snapshot", plainOther}, "/nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, tt.args...)
			cmd.Dir = home
			cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tt.want) {
				t.Errorf("%q as uid %d: %v, output %q; want status 1 saying %q", tt.args, uid, err, out, tt.want)
			}
		})
	}
}
