package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// maxBreaks bounds the transfers of one file cut short and resumed
// within one Fetch. Each must have made progress (a transfer that ends no
// further than the last is given up at once), so this only stops a
// mirror that trickles a few bytes per connection: 1000 lets a 1 GiB set
// cut every MiB through. A variable for tests.
var maxBreaks = 1000

// A transfer cut short that brought less than smallTransfer is resumed
// after a pause, firstPause at first and doubled after each such
// transfer up to maxPause, so that a mirror cutting every connection
// after a few bytes is not sent up to maxBreaks requests back to back; a
// transfer that brought more is resumed at once, and the next pause
// starts again from firstPause.
const (
	smallTransfer = 64 << 10
	firstPause    = 100 * time.Millisecond
	maxPause      = 5 * time.Second
)

// pause is sleepCtx; tests replace it so as not to wait.
var pause = sleepCtx

// sleepCtx waits d or until ctx ends, whose error it then returns: a
// signal stops a run at once during a pause too.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

const (
	// maxFileSize refuses a mirror that streams without end; NetBSD's
	// largest sets are a few hundred MiB.
	maxFileSize = 4 << 30
)

// download moves one file from the mirror to its cache path through
// path+".part", verifying it before the rename.
type download struct {
	r                    *release
	url, name, path, sum string
	// list is the digest list naming the file ("sets/SHA512"), and
	// cachedList says it is the cache's copy, not the mirror's of now.
	list       string
	cachedList bool

	size        int64 // final size
	transferred int64 // bytes received this run
	resumed     bool  // the part file was continued, after a break in this run or an earlier run
	// kept is how many bytes of an earlier run's part file the result
	// starts with: 0 once that file is discarded or rewritten.
	kept int64
	// breaks counts the transfers cut short in this run and continued.
	breaks int
	// wait is the pause before the last transfer resumed, 0 when none.
	wait time.Duration
	// noResume: the mirror answered a request to resume with the whole
	// file, so the part file was started over.
	noResume bool
	// prevEnd is where the part file ended before the current attempt,
	// 0 once the attempt discards it: the attempt made progress only if
	// the file grew past it.
	prevEnd int64
}

func (d *download) run(ctx context.Context) error {
	part := d.path + ".part"
	if err := notRegular(part); err != nil {
		return err
	}
	restarted := false
	d.kept = fileSize(part)
	for {
		have := fileSize(part)
		if have > 0 && d.verify(part) == nil {
			// A complete earlier download that was not renamed yet.
			return d.commit(part)
		}
		d.prevEnd = have
		n, err := d.attempt(ctx, part, have)
		d.transferred += n
		if err != nil {
			// Bytes received are no progress when a mirror that cannot
			// resume sent again what the part file held.
			progress := errors.Is(err, ErrTruncated) && fileSize(part) > d.prevEnd && ctx.Err() == nil
			if progress && d.breaks < maxBreaks {
				d.breaks++
				if err := d.backOff(ctx, fileSize(part)-d.prevEnd); err != nil {
					return &InterruptedError{URL: shown(d.url), Part: part, Have: fileSize(part), Err: err}
				}
				continue // progress was made: resume from the new end
			}
			if progress {
				return fmt.Errorf("%w (this run resumed it after %d earlier breaks, and gives up at this one)", err, d.breaks)
			}
			return err
		}
		err = d.verify(part)
		if err == nil {
			return d.commit(part)
		}
		html := looksHTML(part)
		os.Remove(part)
		d.kept = 0
		if d.resumed && !restarted {
			// The bytes kept from an earlier attempt may be what is wrong:
			// start over once from zero before blaming the mirror.
			restarted, d.resumed = true, false
			continue
		}
		if html {
			return &UnlabelledHTMLError{File: d.name, Err: err}
		}
		return err
	}
}

// backOff pauses before a transfer resumes one cut short after gained
// bytes: the longer, the more transfers in a row brought little.
func (d *download) backOff(ctx context.Context, gained int64) error {
	if gained >= smallTransfer {
		d.wait = 0
		return nil
	}
	d.wait = min(max(2*d.wait, firstPause), maxPause)
	return pause(ctx, d.wait)
}

// listedMissingError is the mirror's 404 for a file its digest list
// names; it matches ErrNotFound.
type listedMissingError struct {
	url, name, list string
	cached          bool // the list is the cache's copy
}

func (e *listedMissingError) Error() string {
	if e.cached {
		return fmt.Sprintf("%v: GET %s: 404, although the cached list %s lists %s: the mirror may have renamed or removed it since, or be incomplete", ErrNotFound, e.url, e.list, e.name)
	}
	return fmt.Sprintf("%v: GET %s: 404, although the release's %s lists %s: the mirror is incomplete", ErrNotFound, e.url, e.list, e.name)
}

func (e *listedMissingError) Is(target error) bool { return target == ErrNotFound }

// isListedMissing reports whether err is a 404 for a file a digest list
// names.
func isListedMissing(err error) bool {
	var e *listedMissingError
	return errors.As(err, &e)
}

// looksHTML tells whether the file at path starts like an HTML page, which
// no release file (gzip, xz, ELF, digest list) does.
func looksHTML(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = bytes.ToLower(bytes.TrimLeft(head[:n], " \t\r\n\ufeff"))
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html")) || bytes.HasPrefix(head, []byte("<head"))
}

// verify hashes part and compares it with the expected digest.
func (d *download) verify(part string) error {
	got, err := HashFile(part)
	if err != nil {
		return fmt.Errorf("verify %s: %w", part, err)
	}
	if got != d.sum {
		return &DigestError{File: d.name, Path: part, Expected: d.sum, Actual: got}
	}
	return nil
}

// commit renames the verified part file into place.
func (d *download) commit(part string) error {
	d.size = fileSize(part)
	if err := os.Rename(part, d.path); err != nil {
		return fsErr("rename", part, err)
	}
	return nil
}

// attempt issues one GET, resuming from have bytes when have > 0, and
// appends the body to part. It returns the bytes received.
func (d *download) attempt(ctx context.Context, part string, have int64) (int64, error) {
	resp, body, err := d.r.watchedGet(ctx, d.url, have)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	total := resp.ContentLength
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	switch resp.StatusCode {
	case http.StatusOK:
		// A fresh start, or a server that ignores Range: rewrite from zero.
		flags |= os.O_TRUNC
		if have > 0 {
			d.noResume = true
		}
		have, d.resumed, d.kept = 0, false, 0
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			if have == 0 {
				// Asked for the whole file (no Range), answered with a
				// part of it: starting over would ask the same again.
				return 0, fmt.Errorf("%w: GET %s: the mirror answered %s (Content-Range %q) to a request for the whole file", ErrHTTP, shown(d.url), resp.Status, resp.Header.Get("Content-Range"))
			}
			// Not the range asked for: discard the partial file and retry
			// from zero (the caller sees no progress only if that fails).
			body.Close()
			os.Remove(part)
			d.kept, d.prevEnd = 0, 0
			return d.attempt(ctx, part, 0)
		}
		total = size
		d.resumed = true
	case http.StatusRequestedRangeNotSatisfiable:
		// The partial file is as long as (or longer than) the file but did
		// not verify: it is garbage.
		body.Close()
		os.Remove(part)
		d.kept, d.prevEnd = 0, 0
		if have == 0 {
			return 0, fmt.Errorf("%w: GET %s: %s", ErrHTTP, shown(d.url), resp.Status)
		}
		return d.attempt(ctx, part, 0)
	case http.StatusNotFound:
		return 0, &listedMissingError{url: shown(d.url), name: d.name, list: d.list, cached: d.cachedList}
	default:
		return 0, fmt.Errorf("%w: GET %s: %s", ErrHTTP, shown(d.url), resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		// Release files are never HTML: this is an error or login page
		// served with 200, which must not reach the .part file.
		return 0, &HTMLError{URL: shown(d.url), ContentType: ct, File: d.name}
	}
	if total > maxFileSize {
		return 0, fmt.Errorf("%s: the mirror announces %d bytes, more than the %d a NetBSD file can be", shown(d.url), total, int64(maxFileSize))
	}

	// O_NONBLOCK: a FIFO put there since run's check fails the open
	// (no reader) instead of waiting; anything else not a file is
	// refused by its mode.
	f, err := os.OpenFile(part, flags|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		return 0, fsErr("create", part, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return 0, fsErr("create", part, err)
		}
		return 0, entryErr(fmt.Errorf("%s is %s: %w", part, filekind.Of(st.Mode()), regfile.ErrNotRegular))
	}
	var w io.Writer = f
	if d.r.f.wrapPart != nil {
		w = d.r.f.wrapPart(f)
	}
	var p io.WriteCloser
	if d.r.f.Progress != nil {
		p = d.r.f.Progress(d.name, total, have)
	}
	if p != nil { // nil: nothing shows this download
		defer p.Close()
		w = &progressTee{part: w, progress: p, failed: func(err error) {
			if d.r.f.Note != nil {
				d.r.f.Note(fmt.Sprintf("the progress writer of %s failed: %v; the download goes on without it", d.name, err))
			}
		}}
	}
	n, rerr, werr := copyBody(w, io.LimitReader(body, maxFileSize+1-have))
	rerr = body.why(ctx, rerr)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	switch {
	case werr != nil:
		return n, fsErr("write", part, werr)
	case rerr != nil && ctx.Err() != nil:
		return n, &InterruptedError{URL: shown(d.url), Part: part, Have: have + n, Err: ctx.Err()}
	case rerr != nil:
		return n, fmt.Errorf("%w: GET %s: got %d of %s bytes: %w; %s",
			ErrTruncated, shown(d.url), have+n, sizeString(total), rerr, d.keptPart(part))
	case total >= 0 && have+n != total:
		return n, fmt.Errorf("%w: GET %s: got %d of %d bytes; %s",
			ErrTruncated, shown(d.url), have+n, total, d.keptPart(part))
	case have+n > maxFileSize:
		os.Remove(part)
		return n, fmt.Errorf("%s: more than %d bytes, more than a NetBSD file can be", shown(d.url), int64(maxFileSize))
	}
	return n, nil
}

// keptPart says what becomes of the part file of a transfer cut short.
func (d *download) keptPart(part string) string {
	if d.noResume {
		return "the mirror cannot resume (it answered a request to resume with the whole file), so the next run downloads it from the start again; the partial file " + part + " is kept for a mirror that can"
	}
	return "the partial file " + part + " is kept and the next run resumes it"
}

// progressTee writes to the .part file's writer, then what that took to
// the Progress writer. The latter only shows the download: its failure
// (a progress bar's terminal gone) is told to failed, once, and it is
// written no more; the download goes on. Before, it failed the download
// as a failure to write the .part file.
type progressTee struct {
	part, progress io.Writer
	failed         func(error)
}

func (t *progressTee) Write(b []byte) (int, error) {
	n, err := t.part.Write(b)
	if t.progress != nil && n > 0 {
		k, perr := t.progress.Write(b[:n])
		if perr == nil && k < n {
			perr = io.ErrShortWrite
		}
		if perr != nil {
			t.progress = nil
			t.failed(perr)
		}
	}
	return n, err
}

// copyBody copies like io.Copy but tells read errors (the network) from
// write errors (the disk).
func copyBody(w io.Writer, r io.Reader) (n int64, rerr, werr error) {
	buf := make([]byte, 64<<10)
	for {
		m, err := r.Read(buf)
		if m > 0 {
			k, err := w.Write(buf[:m])
			n += int64(k)
			if err == nil && k < m {
				err = io.ErrShortWrite
			}
			if err != nil {
				return n, nil, err
			}
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// errStalled is the cause of a request cancelled for a stalled body.
var errStalled = errors.New("no data")

// watchedGet is get, its body failing when no byte arrives for the stall
// timeout: nothing else would end a read from a mirror that stops
// sending but keeps the connection open. Close the returned body, not
// resp.Body.
func (r *release) watchedGet(ctx context.Context, url string, offset int64) (*http.Response, *stallBody, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	resp, err := r.get(rctx, url, offset)
	if err != nil {
		cancel(nil)
		return nil, nil, err
	}
	b := &stallBody{rc: resp.Body, ctx: rctx, cancel: cancel, d: r.f.stallTimeout()}
	b.timer = time.AfterFunc(b.d, func() { cancel(errStalled) })
	b.timer.Stop() // runs only during a Read
	return resp, b, nil
}

// stallBody reads a response body, failing a single Read that waits
// longer than d. The timer runs only while a Read is blocked: time the
// caller spends between reads (writing to disk, to a paused terminal) is
// not the mirror sending nothing.
type stallBody struct {
	rc     io.ReadCloser
	ctx    context.Context // the request's
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.d)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	return n, err
}

// Close stops the timer and ends the request.
func (b *stallBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// why is rerr, a read error, said as "no data for 60s" when the stall
// timeout caused it (and not the end of ctx, the caller's context).
func (b *stallBody) why(ctx context.Context, rerr error) error {
	if rerr != nil && ctx.Err() == nil && errors.Is(context.Cause(b.ctx), errStalled) {
		return fmt.Errorf("no data for %s", seconds(b.d))
	}
	return rerr
}

// seconds is d as "60s" when it is whole seconds (time.Duration says
// "1m0s"), as time.Duration says it otherwise.
func seconds(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// parseContentRange reads "bytes start-end/size". size is -1 when "*".
func parseContentRange(h string) (start, size int64, ok bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	s, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil || size < start {
			return 0, 0, false
		}
	}
	return start, size, true
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func sizeString(n int64) string {
	if n < 0 {
		return "an unknown number of"
	}
	return strconv.FormatInt(n, 10)
}

// transferErr reports a body that broke off while reading a small file.
func transferErr(url string, err error) error {
	return fmt.Errorf("%w: GET %s: %w", ErrTruncated, shown(url), err)
}

// HTMLError is a mirror's answer of an HTML page, status 200, for a
// release file, which is never one: an error or login page (a proxy's, a
// captive portal's), or a mirror URL that leads to no release tree. It
// matches ErrHTTP.
type HTMLError struct {
	URL         string // the file's URL as errors show it (shown: a password or token as "xxxxx")
	ContentType string // the answer's Content-Type
	File        string // the release file asked for ("rescue.tgz")
}

// Error names the URL, the Content-Type and the file asked for.
func (e *HTMLError) Error() string {
	return fmt.Sprintf("%v: GET %s: the mirror answered an HTML page (Content-Type %s) instead of %s", ErrHTTP, e.URL, e.ContentType, e.File)
}

// Is makes errors.Is(err, ErrHTTP) true for an *HTMLError.
func (e *HTMLError) Is(target error) bool { return target == ErrHTTP }

// UnlabelledHTMLError is a release file that failed verification (Err)
// and is an HTML page not labelled text/html: an error or login page, as
// an *HTMLError's, not a transfer cut short or corrupted.
type UnlabelledHTMLError struct {
	File string // the release file asked for ("rescue.tgz")
	Err  error  // the verification's error
}

// Error says the verification's error, then what arrived.
func (e *UnlabelledHTMLError) Error() string {
	return fmt.Sprintf("%v; what arrived is an HTML page (not labelled text/html), not %s", e.Err, e.File)
}

// Unwrap returns the verification's error.
func (e *UnlabelledHTMLError) Unwrap() error { return e.Err }
