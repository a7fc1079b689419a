package blk_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

const crashEnv = "SMOLVMM_BLK_CRASH_IMAGE"

// TestCrashAfterFlush runs a disk in a child process (this test binary
// re-executed), has it serve a write and a FLUSH, kills it with SIGKILL as
// soon as the FLUSH's status byte is written, and checks the data is in the
// image and the lock died with the process.
func TestCrashAfterFlush(t *testing.T) {
	if p := os.Getenv(crashEnv); p != "" {
		crashChild(t, p)
		return
	}
	p := writeImage(t, 64*512)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashAfterFlush$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+p)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatal("child exited before its FLUSH completed")
			}
			if l == "FLUSHED" {
				break wait
			}
			if strings.HasPrefix(l, "FAIL") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child: %s", l)
			}
		case <-timeout:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child never reported its FLUSH")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img[7*512:7*512+4096], pattern(4096, 77)) {
		t.Fatal("data written and flushed before the kill is not in the image")
	}
	d, err := blk.Open(p, blk.Options{})
	if err != nil {
		t.Fatalf("image still locked after its VMM was killed: %v", err)
	}
	d.Close()
}

// crashChild serves an OUT of 4 KiB at sector 7 and a FLUSH, prints
// FLUSHED the moment the FLUSH status byte reads OK, and waits to be killed.
func crashChild(t *testing.T, path string) {
	fail := func(format string, args ...any) {
		fmt.Printf("FAIL "+format+"\n", args...)
		os.Exit(1)
	}
	d, err := blk.Open(path, blk.Options{})
	if err != nil {
		fail("%v", err)
	}
	r := newBlkRig(t, d)
	r.mem.WriteAt(pattern(4096, 77), 0x200000)
	outSt, flushSt := r.status(), r.status()
	r.ring.Publish(r.ring.AddChain([]virtiotest.Buf{{Addr: r.header(blk.TypeOut, 7), Len: 16}, {Addr: 0x200000, Len: 4096}, {Addr: outSt, Len: 1, Write: true}}))
	r.ring.Publish(r.ring.AddChain([]virtiotest.Buf{{Addr: r.header(blk.TypeFlush, 0), Len: 16}, {Addr: flushSt, Len: 1, Write: true}}))
	r.drv.Notify(0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s, _ := r.mem.Read8(flushSt); s != 0xFF {
			if o, _ := r.mem.Read8(outSt); s != blk.StatusOK || o != blk.StatusOK {
				fail("statuses OUT %d FLUSH %d", o, s)
			}
			break
		}
		if time.Now().After(deadline) {
			fail("FLUSH never completed")
		}
	}
	fmt.Println("FLUSHED")
	os.Stdout.Sync()
	time.Sleep(time.Hour)
}
