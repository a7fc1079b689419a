// Package fetchtest serves a fake NetBSD release tree over HTTP for tests of
// code that downloads releases: it computes the SHA512 digest files, serves
// directory indexes, honours Range requests, logs every request, and can
// inject faults (an HTTP status, a replaced body, a transfer cut short).
package fetchtest

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// MirrorPath is where the fake mirror's release tree starts on the server,
// as /pub/NetBSD does on NetBSD's CDN.
const MirrorPath = "/pub/NetBSD"

// Release is one fake NetBSD release for one port.
type Release struct {
	Version string            // e.g. "9.3"
	Arch    string            // e.g. "i386"
	Kernel  []byte            // served as binary/kernel/netbsd-GENERIC.gz
	Sets    map[string][]byte // file name ("rescue.tgz") -> content, in binary/sets
}

// Fault changes how the server answers requests for one path.
type Fault struct {
	Status      int    // answer with this status and Body when non-zero
	Body        []byte // serve this instead of the file when non-nil
	ContentType string // override the Content-Type
	TruncateAt  int64  // > 0: announce the full length, send this many bytes, drop the connection
	StallAt     int64  // > 0: send this many bytes, then stall until the client gives up
	IgnoreRange bool   // answer 200 with the whole file even to a Range request
	WrongRange  bool   // answer a Range request with 206 and the whole file, from byte 0
	PartWhole   bool   // answer a request for the whole file with 206 and bytes from 1 on
	Times       int    // apply to this many requests, then vanish; 0 = forever
	Then        *Fault // after Times requests, apply this one instead of vanishing
}

// Request is one logged request.
type Request struct {
	Path  string // path relative to the mirror, e.g. "NetBSD-9.3/i386/binary/sets/SHA512"
	Range string // the Range header, if any
}

// Server is an httptest server holding a release tree.
type Server struct {
	*httptest.Server

	mu     sync.Mutex
	files  map[string][]byte // path relative to the mirror -> content
	faults map[string]*Fault
	log    []Request
}

// NewServer starts a server holding the given releases, each with its
// binary/kernel/SHA512 and binary/sets/SHA512 in NetBSD's BSD format. Close
// it when done.
func NewServer(releases ...Release) *Server {
	s := &Server{files: map[string][]byte{}, faults: map[string]*Fault{}}
	for _, r := range releases {
		s.AddRelease(r)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// AddRelease adds (or replaces) a release's files and digest files.
func (s *Server) AddRelease(r Release) {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := "NetBSD-" + r.Version + "/" + r.Arch + "/binary/"
	s.files[base+"kernel/netbsd-GENERIC.gz"] = r.Kernel
	s.files[base+"kernel/SHA512"] = DigestFile(map[string][]byte{"netbsd-GENERIC.gz": r.Kernel})
	for name, data := range r.Sets {
		s.files[base+"sets/"+name] = data
	}
	s.files[base+"sets/SHA512"] = DigestFile(r.Sets)
}

// Mirror is the URL to pass as the mirror.
func (s *Server) Mirror() string { return s.URL + MirrorPath }

// SetFile replaces the content of a path relative to the mirror.
func (s *Server) SetFile(rel string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[rel] = data
}

// SetFault installs a fault for a path relative to the mirror.
func (s *Server) SetFault(rel string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[rel] = &f
}

// Requests returns the requests logged since the start or the last
// ResetLog.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// ResetLog forgets the logged requests.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// DigestFile renders a SHA512 file in NetBSD's format, sorted by name.
func DigestFile(files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		sum := sha512.Sum512(files[n])
		fmt.Fprintf(&b, "SHA512 (%s) = %s\n", n, hex.EncodeToString(sum[:]))
	}
	return []byte(b.String())
}

// KernelPath is the path of a file in a release's binary/kernel directory,
// relative to the mirror, for SetFault and SetFile.
func KernelPath(version, arch, file string) string {
	return "NetBSD-" + version + "/" + arch + "/binary/kernel/" + file
}

// SetsPath is the path of a file in a release's binary/sets directory,
// relative to the mirror.
func SetsPath(version, arch, file string) string {
	return "NetBSD-" + version + "/" + arch + "/binary/sets/" + file
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	rel, ok := strings.CutPrefix(req.URL.Path, MirrorPath+"/")
	if !ok && req.URL.Path != MirrorPath {
		http.NotFound(w, req)
		return
	}
	s.mu.Lock()
	s.log = append(s.log, Request{Path: rel, Range: req.Header.Get("Range")})
	data, found := s.files[rel]
	var fault Fault
	if f := s.faults[rel]; f != nil {
		fault = *f
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				if f.Then != nil {
					next := *f.Then
					s.faults[rel] = &next
				} else {
					delete(s.faults, rel)
				}
			}
		}
	}
	var listing []string
	if !found && (rel == "" || strings.HasSuffix(rel, "/")) {
		listing = s.children(rel)
	}
	s.mu.Unlock()

	if fault.Status != 0 {
		if fault.ContentType != "" {
			w.Header().Set("Content-Type", fault.ContentType)
		}
		w.WriteHeader(fault.Status)
		w.Write(fault.Body)
		return
	}
	if listing != nil && fault.Body == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>Index of /%s</title></head><body><pre>\n<a href=\"../\">../</a>\n", rel)
		for _, c := range listing {
			fmt.Fprintf(w, "<a href=\"%s\">%s</a>\n", c, c)
		}
		fmt.Fprint(w, "</pre></body></html>\n")
		return
	}
	if fault.Body != nil {
		data, found = fault.Body, true
	}
	if !found {
		http.NotFound(w, req)
		return
	}
	ct := fault.ContentType
	if ct == "" {
		ct = "application/octet-stream"
		if path.Base(rel) == "SHA512" {
			ct = "text/plain"
		}
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Accept-Ranges", "bytes")
	start := int64(0)
	if r := req.Header.Get("Range"); r != "" && !fault.IgnoreRange {
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r, "bytes="), "-"), 10, 64)
		if err != nil || n < 0 || n >= int64(len(data)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	body := data[start:]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if fault.PartWhole && req.Header.Get("Range") == "" && len(data) > 1 {
		body = data[1:]
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 1-%d/%d", len(data)-1, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusPartialContent)
	} else if fault.WrongRange && req.Header.Get("Range") != "" {
		body = data
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusPartialContent)
	} else if start > 0 {
		w.WriteHeader(http.StatusPartialContent)
	}
	if fault.StallAt > 0 && fault.StallAt < int64(len(body)) {
		w.Write(body[:fault.StallAt])
		w.(http.Flusher).Flush()
		<-req.Context().Done()
		return
	}
	if fault.TruncateAt > 0 && fault.TruncateAt < int64(len(body)) {
		// Fewer bytes than Content-Length: net/http closes the
		// connection, and the client sees an unexpected EOF.
		w.Write(body[:fault.TruncateAt])
		return
	}
	w.Write(body)
}

// children lists the entries directly below directory rel ("" for the
// mirror root), directories with a trailing slash. Called with s.mu held.
func (s *Server) children(rel string) []string {
	seen := map[string]bool{}
	var out []string
	for p := range s.files {
		rest, ok := strings.CutPrefix(p, rel)
		if !ok || rest == "" {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		if !seen[rest] {
			seen[rest] = true
			out = append(out, rest)
		}
	}
	if len(out) == 0 {
		return nil
	}
	sort.Strings(out)
	return out
}
