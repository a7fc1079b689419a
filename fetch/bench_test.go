package fetch

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// benchSize is about the size of NetBSD 9.3 i386's rescue.tgz.
const benchSize = 16 << 20

func benchServer(b *testing.B) (*fetchtest.Server, *Fetcher) {
	data := make([]byte, benchSize)
	rand.Read(data)
	srv := fetchtest.NewServer(fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: data[:1<<20],
		Sets: map[string][]byte{"rescue.tgz": data}})
	b.Cleanup(srv.Close)
	return srv, &Fetcher{Mirror: srv.Mirror(), Cache: b.TempDir()}
}

// BenchmarkDownload: a full download and verification of a 16 MiB set
// over loopback, beside BenchmarkDownloadCeiling.
func BenchmarkDownload(b *testing.B) {
	_, f := benchServer(b)
	rel, err := f.Fetch(context.Background(), "9.3", "i386")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		os.Remove(rel.Sets[0].Path)
		if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDownloadCeiling: the same bytes with a bare GET into a file and
// one SHA512 pass, the least a verified download can cost.
func BenchmarkDownloadCeiling(b *testing.B) {
	srv, _ := benchServer(b)
	url := srv.Mirror() + "/" + fetchtest.SetsPath("9.3", "i386", "rescue.tgz")
	path := filepath.Join(b.TempDir(), "x")
	b.SetBytes(benchSize)
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := os.Create(path)
		io.Copy(out, resp.Body)
		resp.Body.Close()
		out.Close()
		in, _ := os.Open(path)
		h := sha512.New()
		io.Copy(h, in)
		in.Close()
	}
}

// BenchmarkCachedRun: a second run (everything cached) re-hashes the
// kernel and the set; beside BenchmarkHashCeiling.
func BenchmarkCachedRun(b *testing.B) {
	_, f := benchServer(b)
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize + 1<<20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rel, err := f.Fetch(context.Background(), "9.3", "i386")
		if err != nil || rel.Requests != 0 {
			b.Fatal(err, rel.Requests)
		}
	}
}

// BenchmarkHashCeiling: sha512 of the same 17 MiB already in memory.
func BenchmarkHashCeiling(b *testing.B) {
	data := make([]byte, benchSize+1<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		sha512.Sum512(data)
	}
}
