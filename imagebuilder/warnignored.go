package imagebuilder

import (
	"io"

	"github.com/smolvmm/smolvmm/service"
)

// WarnIgnoredPostinst writes to log, as a build does, one warning naming
// the files of the service's postinst/ that are no scripts and do not
// run, if there are any: for a caller that does not build because its
// image is up to date, whose user would otherwise never hear of them.
func WarnIgnoredPostinst(s *service.Service, log io.Writer) {
	warnIgnored(s, log)
}
