package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/filekind"
)

// The refusals of files named on the command line, in one wording for
// every command (docs/commands.md: "what went wrong (what to change)"): the flag and
// its value, what is wrong, and the flag to change. The libraries return
// the facts (fs.ErrNotExist, atomicfile.DirError); the flags are named
// here.

// outputDirError is the refusal of flag's output path, whose directory
// dir does not exist; verb is what would be done in it ("write it",
// "listen").
func outputDirError(flag, path, dir, verb string) error {
	return &fileError{fmt.Sprintf("%s %s: no directory %s to %s in (create it first, or pick another %s)", flag, path, dir, verb, flag), fs.ErrNotExist}
}

// checkOutputDir refuses, with outputDirError, an output path of flag
// whose directory does not exist (or is not a directory), and, as
// command-line mistakes, "-" (checkNotStdout) and one too long to be a
// path (checkNameLength).
func checkOutputDir(flag, path, verb string) error {
	if err := checkNotStdout(flag, path); err != nil {
		return err
	}
	if err := checkNameLength(flag, path); err != nil { // checks.go
		return err
	}
	if dir := filepath.Dir(path); !isDir(dir) { // checks.go
		return outputDirError(flag, path, dir, verb)
	}
	return nil
}

// checkNotStdout refuses "-" as the output file of flag, a command-line
// mistake: kstrip -o takes it for standard output, as many tools do, but
// the other outputs are files written by replacement (an image, a
// snapshot, bench's results, whose table is on standard output already),
// and "-" made a file of that name in the current directory.
func checkNotStdout(flag, path string) error {
	if path != "-" {
		return nil
	}
	return usageErrorf(`%s -: "-" is not standard output here: give a file name (./- for a file named -)`, flag)
}

// inputFileError is err about the input file path named by flag's value
// spec (flagFileError's wording), with advice when the file does not
// exist: "-d x.img: no such file or directory (check the path given with
// -d)".
func inputFileError(flag, spec, path string, err error) error {
	e := flagFileError(flag, spec, path, err)
	if a := inputAdvice(err, "the path given with "+flag, "another "+flag); a != "" {
		return &fileError{e.Error() + " (" + a + ")", err}
	}
	return e
}

// inputAdvice is what to do about err, the failure to open an input file:
// check is what to check when it does not exist ("the path given with
// -x"), other what else to give when it may not be read ("another -x");
// "" for other faults.
func inputAdvice(err error, check, other string) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "check " + check
	case errors.Is(err, fs.ErrPermission):
		return "make it readable by the user smolvmm runs as, or give " + other
	}
	return ""
}

// checkReadable refuses, with inputFileError, a regular file of flag that
// this process may not open, before the work that would read it.
func checkReadable(flag, path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrPermission) {
		return inputFileError(flag, path, path, err)
	}
	if err == nil {
		f.Close()
	}
	return nil
}

// unsafeLinkAdvice is what to do about an output path that is another
// user's symlink in a sticky directory (atomicfile.ErrUnsafeSymlink).
const unsafeLinkAdvice = "a link there could name any file, which would be replaced; give the file's own path"

// outputTargetError words atomicfile.Target's refusal of the output path
// that what names ("-o", "image"): another user's symlink, with what to
// do, or a system call's error, the path named once and no call's name
// ("-o X: permission denied", not "output lstat X: ..."). ok is false for
// other errors, which the caller words.
func outputTargetError(what, path string, err error) (_ error, ok bool) {
	var pe *fs.PathError
	switch {
	case errors.Is(err, atomicfile.ErrUnsafeSymlink):
		return &fileError{flagFileError(what, path, path, err).Error() + " (" + unsafeLinkAdvice + ")", err}, true
	case errors.As(err, &pe) && pe.Path == path:
		return &fileError{fmt.Sprintf("%s %s: %v", what, path, pe.Err), err}, true
	}
	return err, false
}

// checkInputDir refuses, with inputFileError, a directory flag's value
// (spec is the value, dir its path) that cannot be found, before a library
// reports it in words of its own; one that is a file of another kind is
// refused naming the flag, the kind and what to give (want: "a directory
// to share"), where the library would say "data directory X is not a
// directory".
func checkInputDir(flag, spec, dir, want string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return inputFileError(flag, spec, dir, err)
	}
	if !st.IsDir() {
		return &fileError{fmt.Sprintf("%s %s is %s, not a directory: give %s", flag, dir, filekind.Of(st.Mode()), want), fs.ErrInvalid}
	}
	return nil
}

// serviceDirWant is what --service-dir must name, for checkInputDir.
const serviceDirWant = "a directory holding services, each a NAME/etc/rc"

// archError is imagebuilder.CheckArch's refusal as --arch's: `--arch
// "sparc": images can be built ...`, not `--arch: arch "sparc": ...`.
func archError(err error) error {
	return usageErrorf("--%v", err)
}

// checkCacheDir refuses a --cache that exists and is no directory, which
// fetch would find when it makes the release's directories in it
// ("mkdir X: not a directory").
func checkCacheDir(c *cli.Context) error {
	dir := c.String("cache")
	if dir == "" {
		return nil
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, syscall.ENOTDIR):
		return &fileError{fmt.Sprintf("--cache %s: a directory above it is a file: give a directory to keep downloads in (it is made if missing)", dir), err}
	case err == nil && !st.IsDir():
		return &fileError{fmt.Sprintf("--cache %s is %s, not a directory: give a directory to keep downloads in (it is made if missing)", dir, filekind.Of(st.Mode())), fs.ErrInvalid}
	}
	return nil
}

// checkSetPath refuses a -x set that is missing, neither a regular file
// (an archive) nor a directory (a FIFO would block the build, a device be
// read as an archive), or empty.
func checkSetPath(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return inputFileError("-x", path, path, err)
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		return &fileError{fmt.Sprintf("-x %s is %s: give a set archive (.tgz, .tar.xz, .tar) or a directory", path, filekind.Of(st.Mode())), imagebuilder.ErrSetKind}
	}
	if st.Mode().IsRegular() {
		// Refused now, not by the set reader once the build has begun
		// ("set X: open: permission denied").
		if err := checkReadable("-x", path); err != nil {
			return err
		}
	}
	if st.Mode().IsRegular() && st.Size() == 0 {
		// The set reader's words, with what to give.
		return &fileError{fmt.Sprintf("-x %s: empty file, not a set: give a set archive (.tgz, .tar.xz, .tar) or a directory", path), fs.ErrInvalid}
	}
	return nil
}
