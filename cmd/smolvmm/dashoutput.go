package main

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
