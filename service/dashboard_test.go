package service

import (
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestDashboard_PageAndAssetsNeedNoKeyAndAPIPathsStayJSON(t *testing.T) {
	r := newHTTPRig(t)
	page := func(target string) (int, http.Header, string) {
		t.Helper()
		status, h, b := r.send(t, r.request(t, http.MethodGet, target, "", nil))
		return status, h, string(b)
	}
	status, h, html := page("/")
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", status, h.Get("Content-Type"))
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") ||
		!strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q: want the page's own scripts and calls only", csp)
	}
	// Every file the page and its scripts load is served, with its type.
	refs := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) == 0 {
		t.Fatalf("the page loads nothing under /ui/: %s", html)
	}
	seen := map[string]bool{}
	queue := []string{}
	for _, m := range refs {
		queue = append(queue, m[1])
	}
	imports := regexp.MustCompile(`from "\./([^"]+)"`)
	for len(queue) > 0 {
		target := queue[0]
		queue = queue[1:]
		if seen[target] {
			continue
		}
		seen[target] = true
		status, h, body := page(target)
		want := map[bool]string{true: "text/javascript", false: "text/css"}[strings.HasSuffix(target, ".js")]
		if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), want) ||
			h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d %s %q, want 200 %s nosniff", target, status, h.Get("Content-Type"),
				h.Get("X-Content-Type-Options"), want)
		}
		for _, m := range imports.FindAllStringSubmatch(body, -1) {
			queue = append(queue, "/ui/"+m[1])
		}
	}
	if !seen["/ui/sign.js"] || !seen["/ui/chart.js"] {
		t.Errorf("the scripts' imports were not followed: %v", seen)
	}
	for _, c := range []struct{ method, target string }{
		{http.MethodGet, "/v1/nothing"}, {http.MethodGet, "/ui/"}, {http.MethodGet, "/ui/nothing.js"},
		{http.MethodGet, "/index.html"}, {http.MethodPost, "/"}, {http.MethodGet, "/v1/"},
	} {
		status, h, b := r.send(t, r.request(t, c.method, c.target, "", nil))
		if _, aerr := httpDecode(t, status, h, b, nil); status != http.StatusNotFound || aerr == nil {
			t.Errorf("%s %s: %d %s, want a JSON 404", c.method, c.target, status, b)
		}
	}
}

func TestDashboard_WhoAmIShowsTheSigningKeysScopes(t *testing.T) {
	r := newHTTPRig(t)
	for _, c := range []struct {
		key, client string
		scopes      []string
	}{
		{keyARead, "fund-a", []string{"read"}},
		{keyATrade, "fund-a", []string{"read", "trade"}},
		{keyAdmin, "ops", []string{"admin"}},
	} {
		var got WhoAmI
		r.must(t, http.StatusOK, http.MethodGet, "/v1/whoami", c.key, nil, &got)
		if want := (WhoAmI{KeyID: c.key, Client: c.client, Scopes: c.scopes}); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", c.key, got, want)
		}
	}
	if status, aerr := r.call(t, http.MethodGet, "/v1/whoami", "", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("unsigned: %d %v, want 401", status, aerr)
	}
}
