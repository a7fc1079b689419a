package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestProxyAuthRequired: a proxy's 407 is said as the proxy's demand for
// credentials, for http:// mirrors (a response) and https:// ones (the
// CONNECT's answer); it was "unexpected HTTP status ... (check the
// mirror URL)" or "cannot reach the mirror", of a mirror not at fault.
func TestProxyAuthRequired(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
	}))
	t.Cleanup(proxy.Close)
	pu, _ := url.Parse(proxy.URL)
	for _, mirror := range []string{"http://mirror.example/pub/NetBSD", "https://mirror.example/pub/NetBSD"} {
		t.Run(mirror, func(t *testing.T) {
			f := &Fetcher{Mirror: mirror, Cache: t.TempDir(),
				Client: &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}}
			_, err := f.Fetch(context.Background(), "9.3", "i386")
			if !errors.Is(err, ErrProxyAuth) || errors.Is(err, ErrHTTP) || errors.Is(err, ErrNetwork) {
				t.Fatalf("Fetch = %v, want %v only", err, ErrProxyAuth)
			}
			for _, want := range []string{"asks for credentials", "HTTPS_PROXY", "USER:PASSWORD@"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Fetch = %v, want it saying %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "mirror URL") {
				t.Errorf("Fetch = %v blames the mirror URL", err)
			}
		})
	}
}

// TestRedirectLoop: a mirror redirecting in a loop is said to, as an
// ErrHTTP whose advice (check the mirror) is the caller's; it was "cannot
// reach the mirror", though it answered every request.
func TestRedirectLoop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	f := &Fetcher{Mirror: srv.URL + "/pub/NetBSD", Cache: t.TempDir()}
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	if !errors.Is(err, ErrHTTP) || errors.Is(err, ErrNetwork) || strings.Contains(err.Error(), "cannot reach") ||
		!strings.Contains(err.Error(), "redirects in a loop") || strings.Contains(err.Error(), "check ") {
		t.Errorf("Fetch = %v, want %v saying the mirror redirects in a loop", err, ErrHTTP)
	}
}
