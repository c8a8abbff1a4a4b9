package service

import (
	"embed"
	"io/fs"
	"net/http"
	"sort"
	"strings"

	"github.com/blockexec/blockexec/api"
)

// web is the dashboard: a page and its script and style, no data. Every
// number it shows comes from the signed API, which the page calls with
// the key the user logs in with.
//
//go:embed web/index.html web/app.js web/chart.js web/sign.js web/app.css
var web embed.FS

// Where the dashboard is served: the page at "/" exactly, its assets
// under dashboardAssets.
const (
	dashboardPage   = "/{$}"
	dashboardAssets = "/ui/"
)

// dashboardCSP keeps the page to its own origin: its scripts and styles
// only (no inline code, nothing from another host), and calls to this API.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveDashboard adds the dashboard to mux, unsigned: the page and its
// assets hold no data, and its calls are signed requests to the routes.
// API paths not routed stay JSON 404s.
func (s *server) serveDashboard(mux *http.ServeMux) {
	page, assets := dashboard()
	for pattern, h := range map[string]http.Handler{dashboardPage: page, dashboardAssets: assets} {
		mux.Handle(http.MethodGet+" "+pattern, s.wrap(route{method: http.MethodGet, path: pattern,
			serve: func(_ *server, w http.ResponseWriter, rq *request) { h.ServeHTTP(w, rq.r) }}))
	}
}

// dashboard is the page and its assets.
func dashboard() (page, assets http.Handler) {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	headers := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hd := w.Header()
			hd.Set("Content-Security-Policy", dashboardCSP)
			hd.Set("X-Content-Type-Options", "nosniff")
			hd.Set("Referrer-Policy", "no-referrer")
			hd.Set("Cache-Control", "no-cache")
			h.ServeHTTP(w, r)
		})
	}
	page = headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	}))
	// A directory listing would be a page of its own: answer the files only.
	assets = headers(http.StripPrefix(strings.TrimSuffix(dashboardAssets, "/"), http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			if f, err := fs.Stat(sub, r.URL.Path[1:]); err != nil || f.IsDir() {
				writeError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no such file"))
				return
			}
			files.ServeHTTP(w, r)
		})))
	return page, assets
}

// WhoAmI is GET /v1/whoami: the key a request was signed with, so that a
// client (the dashboard) shows only what the key may do.
type WhoAmI struct {
	KeyID  string   `json:"key_id"`
	Client string   `json:"client"`
	Scopes []string `json:"scopes"` // as the key holds them; admin implies read and trade
}

// whoami is GET /v1/whoami. The key is looked up again: the keys file may
// have been reloaded since the request was authenticated, and a key gone
// from it answers as on the next request, 401.
func (s *server) whoami(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	key, ok := (*s.keys.set.Load())[rq.key]
	if !ok {
		return 0, nil, api.Errorf(http.StatusUnauthorized, api.CodeUnauthorized, "unknown key %q", rq.key)
	}
	scopes := make([]string, 0, len(key.Scopes))
	for sc, on := range key.Scopes {
		if on {
			scopes = append(scopes, sc)
		}
	}
	sort.Strings(scopes)
	return http.StatusOK, WhoAmI{KeyID: key.ID, Client: key.Client, Scopes: scopes}, nil
}
