// Package webclient is the browser peer and the swarm dashboard: plain ES
// modules, HTML and CSS, embedded in the binary and served by the tracker,
// gzip-compressed. There is no build step: what is in this folder is what
// the browser runs.
//
//	GET /            the watch page (?channel=ID, default the first live channel)
//	GET /dashboard   the live swarm: every tree, egress, offload, contributions
//	GET /static/...  the modules and styles both pages load
package webclient

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

//go:embed index.html dashboard.html js/*.js css/*.css
var files embed.FS

// Assets is every file the pages load, by path (index.html, js/app.js, ...).
func Assets() fs.FS { return files }

// Handler serves the watch page at "/", the dashboard at "/dashboard" and
// their modules under "/static/", gzip-compressed for clients that accept
// it. Paths it does not know get 404.
func Handler() http.Handler {
	static := http.StripPrefix("/static/", http.FileServerFS(files))
	mux := http.NewServeMux()
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := files.ReadFile(name)
			if err != nil {
				http.Error(w, "page missing from the build", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(b)
		}
	}
	mux.HandleFunc("GET /{$}", page("index.html"))
	mux.HandleFunc("GET /dashboard", page("dashboard.html"))
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if name == "" || strings.HasSuffix(name, "/") || (!strings.HasPrefix(name, "js/") && !strings.HasPrefix(name, "css/")) {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(name, ".js") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	})
	return gzhttp.GzipHandler(mux)
}
