package fetch

import (
	"context"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

// TestMirrorCredentialsHidden: a mirror URL with a password
// (http://user:secret@host/...) had it printed in every error that names
// a URL, and one with a user part only (http://TOKEN@host/..., a token)
// still has. Errors show the URL with the password replaced, as
// url.URL.Redacted does, or the user part when there is no password.
func TestMirrorCredentialsHidden(t *testing.T) {
	tests := []struct {
		name    string
		version string
		fault   string // path to give fault
		f       fetchtest.Fault
		closed  bool // the mirror is unreachable
		mirror  string
	}{
		{name: "unknown version", version: "9.9"},
		{name: "release digest missing", fault: fetchtest.KernelPath("9.3", "i386", "SHA512"), f: fetchtest.Fault{Status: 404}},
		{name: "digest file error", fault: fetchtest.KernelPath("9.3", "i386", "SHA512"), f: fetchtest.Fault{Status: 500}},
		{name: "digest file is HTML", fault: fetchtest.KernelPath("9.3", "i386", "SHA512"), f: fetchtest.Fault{Status: 200, ContentType: "text/html", Body: []byte("<html></html>")}},
		{name: "listed set missing", fault: fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), f: fetchtest.Fault{Status: 404}},
		{name: "set error", fault: fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), f: fetchtest.Fault{Status: 503}},
		{name: "set is HTML", fault: fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), f: fetchtest.Fault{Status: 200, ContentType: "text/html", Body: []byte("<html></html>")}},
		// Cut where every transfer starts over: the run gives up.
		{name: "transfer cut short", fault: fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), f: fetchtest.Fault{TruncateAt: 10, IgnoreRange: true}},
		{name: "unreachable", closed: true},
		{name: "not http", mirror: "ftp://USERINFO@mirror.example/pub/NetBSD"},
	}
	creds := []struct {
		name     string // not the secret: it names the test's directory
		userinfo string
		secret   string // what no error may show
		want     string // how errors show the mirror
	}{
		{"password", "user:secret", "secret", "://user:xxxxx@"},
		{"user only", "tok3n", "tok3n", "://xxxxx@"},
	}
	for _, c := range creds {
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				srv, f := setup(t)
				f.Mirror = strings.Replace(srv.Mirror(), "http://", "http://"+c.userinfo+"@", 1)
				if tt.mirror != "" {
					f.Mirror = strings.Replace(tt.mirror, "USERINFO", c.userinfo, 1)
				}
				if tt.fault != "" {
					srv.SetFault(tt.fault, tt.f)
				}
				if tt.closed {
					srv.Close()
				}
				version := tt.version
				if version == "" {
					version = "9.3"
				}
				_, err := f.Fetch(context.Background(), version, "i386")
				if err == nil {
					t.Fatal("no error")
				}
				if strings.Contains(err.Error(), c.secret) {
					t.Errorf("error shows the mirror's credential %q: %v", c.secret, err)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("error does not name the mirror (as %s...): %v", c.want, err)
				}
			})
		}
	}
}

// shown hides a password, or a user part without one, also in a URL
// that does not parse.
func TestShown(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:secret@host/pub":    "http://user:xxxxx@host/pub",
		"https://host/pub":               "https://host/pub",
		"http://user:se%zzcret@host/pub": "http://xxxxx@host/pub",
		"http://user:se%zzcret@host":     "http://xxxxx@host",
		"http://tok3n@host/pub":          "http://xxxxx@host/pub",
		"http://tok3n@host":              "http://xxxxx@host",
		"http://@host/pub":               "http://@host/pub",
		"ftp://tok3n@host/pub":           "ftp://xxxxx@host/pub",
		"http://host/a@b%zz":             "http://host/a@b%zz",
		"not a url":                      "not a url",
	} {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %q, want %q", in, got, want)
		}
	}
}
