package debiankernels

import (
	"testing"

	"github.com/smolvmm/smolvmm/internal/usercache/usercachetest"
)

// TestCacheDirNotPlanted: with HOME unset the cache fell back to a fixed
// name under the temporary directory and trusted what another user had
// put there.
func TestCacheDirNotPlanted(t *testing.T) {
	usercachetest.CheckNotPlanted(t, func() string { return CacheDir("tboot") })
}
