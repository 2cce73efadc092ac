package webclient

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, gz bool) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func body(t *testing.T, r *http.Response) []byte {
	t.Helper()
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		rd = z
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServesPagesAndModules(t *testing.T) {
	h := Handler()
	for _, c := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `src="/static/js/app.js"`},
		{"/dashboard", "text/html", "dashboard"},
		{"/static/js/app.js", "text/javascript", "window"},
		{"/static/js/wire.js", "text/javascript", "export"},
		{"/static/css/style.css", "text/css", "body"},
	} {
		r := get(t, h, c.path, true)
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, r.StatusCode)
			continue
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if b := body(t, r); !bytes.Contains(b, []byte(c.contains)) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
	}
	for _, p := range []string{"/nope", "/static/", "/static/js/", "/static/index.html", "/static/js/missing.js", "/static/../webclient.go"} {
		if r := get(t, h, p, false); r.StatusCode != http.StatusNotFound && (r.StatusCode < 300 || r.StatusCode > 308) {
			t.Errorf("GET %s: %d, want 404 or a redirect to a clean path", p, r.StatusCode)
		}
	}
}

// Every module a page imports is embedded: a missing file would only
// show as a broken page in a browser.
func TestImportsResolve(t *testing.T) {
	imp := regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"](\./[^'"]+)['"]`)
	err := fs.WalkDir(Assets(), "js", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(Assets(), path)
		for _, m := range imp.FindAllSubmatch(b, -1) {
			target := "js/" + strings.TrimPrefix(string(m[1]), "./")
			if _, err := fs.Stat(Assets(), target); err != nil {
				t.Errorf("%s imports %s, which is not embedded", path, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The budget: the watch page, everything it loads, at most 100 KB
// compressed.
func TestPageWeight(t *testing.T) {
	h := Handler()
	total := 0
	for _, p := range []string{"/", "/static/css/style.css", "/static/js/app.js", "/static/js/swarm.js", "/static/js/stream.js",
		"/static/js/player.js", "/static/js/wire.js", "/static/js/rs.js"} {
		r := get(t, h, p, true)
		raw, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", p, r.StatusCode)
		}
		total += len(raw)
	}
	t.Logf("watch page: %d bytes compressed", total)
	if total > 100_000 {
		t.Errorf("watch page weighs %d bytes compressed, budget 100,000", total)
	}
}
