package bench

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// settledPipe is the bench's end of a Target's SettledFlag pipe: it says
// when the VM process has done what it does after its guest starts, so
// that its memory is read after that.
type settledPipe struct {
	r, w *os.File
	done chan struct{} // closed at the process's byte, or at EOF
}

// attachSettled gives cmd the write end as descriptor 3 and t.SettledFlag
// naming it. It returns nil when t has no SettledFlag or is jailed (the
// jail's own child could not be given the descriptor).
func attachSettled(t Target, cmd *exec.Cmd) (*settledPipe, error) {
	if t.SettledFlag == "" || t.Jailed {
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("settled pipe: %w", err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	cmd.Args = append(cmd.Args, t.SettledFlag, fmt.Sprint(2+len(cmd.ExtraFiles)))
	return &settledPipe{r: r, w: w, done: make(chan struct{})}, nil
}

// started closes the bench's copy of the write end, once the process has
// its own, and follows the read end.
func (p *settledPipe) started() {
	p.w.Close()
	go func() {
		defer close(p.done)
		_, _ = p.r.Read(make([]byte, 1))
	}()
}

// wait returns when the process has settled (true), or after timeout.
func (p *settledPipe) wait(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}

// close ends the pipe and what follows it; startedOK says whether
// started was called.
func (p *settledPipe) close(startedOK bool) {
	p.r.Close() // ends a pending read
	if startedOK {
		<-p.done
	} else {
		p.w.Close()
	}
}
