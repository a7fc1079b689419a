package imagebuilder

import (
	"fmt"
	"io"
)

// scriptOutput is a postinst script's stdout and stderr: the tail kept for
// its error, and the build's log as the output comes. The log is only
// told: once a write to it fails (or writes short) it is written no more
// and its error kept (logErr), while the script's output is still read to
// its end. Before, the log's failure stopped the reading, and the script
// was taken to have failed.
type scriptOutput struct {
	tail   *tailBuffer
	log    io.Writer // nil: no log, or it failed
	logErr error     // the log's first failure
}

func (o *scriptOutput) Write(p []byte) (int, error) {
	o.tail.Write(p)
	if o.log != nil {
		n, err := o.log.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			o.log, o.logErr = nil, err
		}
	}
	return len(p), nil
}

// ScriptLogError is a postinst script that succeeded but whose output the
// build's log (Config.Log) failed to take, with what it printed. The
// build stops, so that the log's missing part is not lost unsaid.
type ScriptLogError struct {
	Service string // the service's name
	Script  string // the script, "postinst/NAME.sh"
	UID     uint32 // the user it ran as
	Err     error  // the log's write error
	Output  string // the script's output's last bytes, after "..." when it printed more
}

// Error is one line: the script, that it ran, and the log's error.
func (e *ScriptLogError) Error() string {
	return fmt.Sprintf("service %s: %s ran (as uid %d, in the staging root), but the build's log could not take its output: %v", e.Service, e.Script, e.UID, e.Err)
}

// Detail is the tail of the script's output, which the log missed (in
// part at least), to print after Error.
func (e *ScriptLogError) Detail() string { return e.Output }

// Unwrap returns the log's write error.
func (e *ScriptLogError) Unwrap() error { return e.Err }
