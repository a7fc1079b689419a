package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestErrorDetail: an error meant to span lines (a crash's registers, a
// failed postinst script's output) was flattened into one line by the
// escaping of control characters; its detail is now printed on lines of
// its own, each escaped, after the one error line, which still escapes a
// name's newline.
func TestErrorDetail(t *testing.T) {
	crash := &vmm.CrashError{Reason: "KVM internal error 1 (emulation failure)", Regs: "EAX=00000001 EBX=00000002\nEIP=00100000 EFLAGS=00000002\nGDT=00000000/0 IDT=00000000/0"}
	script := &imagebuilder.ScriptError{Service: "web", Script: "postinst/x.sh", UID: 65534, Err: errors.New("exit status 3"),
		Output: "making the cache\nmkdir: var/cache: File exists\r\n\x1b[2Jgone\n"}
	for _, tc := range []struct {
		name    string
		err     error
		command string
		want    string
		status  int
	}{{
		name:    "crash",
		err:     guestCrashExit(nil, fmt.Errorf("run kernel k: %w", crash)),
		command: "run",
		want: "smolvmm run: run kernel k: guest crashed: KVM internal error 1 (emulation failure)\n" +
			"  EAX=00000001 EBX=00000002\n  EIP=00100000 EFLAGS=00000002\n  GDT=00000000/0 IDT=00000000/0",
		status: 2,
	}, {
		name:    "crash of a kernel whose name has a newline",
		err:     guestCrashExit(nil, fmt.Errorf("run kernel a\nb: %w", &vmm.CrashError{Reason: "failed VM entry", Regs: "EAX=1"})),
		command: "run",
		want:    "smolvmm run: run kernel a\\nb: guest crashed: failed VM entry\n  EAX=1",
		status:  2,
	}, {
		name:    "postinst failure",
		err:     fmt.Errorf("build image: %w", script),
		command: "up",
		want: "smolvmm up: build image: service web: postinst/x.sh failed (as uid 65534, in the staging root): exit status 3\n" +
			"  making the cache\n  mkdir: var/cache: File exists\n  \\x1b[2Jgone",
		status: 1,
	}, {
		name:    "a path with a newline, no detail",
		err:     fmt.Errorf("open /tmp/a\nb.img: %w", errors.New("no such file or directory")),
		command: "mkimg",
		want:    "smolvmm mkimg: open /tmp/a\\nb.img: no such file or directory",
		status:  1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorText(tc.command, advise(tc.err), tc.err); got != tc.want {
				t.Errorf("errorText =\n%s\nwant\n%s", got, tc.want)
			}
			if got := exitCode(tc.err); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
		})
	}
}
