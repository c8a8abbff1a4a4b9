package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the dashboard test drives: $BLOCKEXEC_CHROMIUM,
// else Debian's chromium (make chromium installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("BLOCKEXEC_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no Chromium at %s (%v): run make chromium, or set BLOCKEXEC_CHROMIUM", path, err)
	}
	return path
}

// browser is a headless Chromium tab that stops with the test; console
// collects what the page wrote to its console, for a failure's message.
type browser struct {
	ctx        context.Context
	mu         sync.Mutex
	console    []string
	exceptions []string // uncaught, in the page's scripts
}

// newBrowser starts Chromium at path with the flags this machine needs
// (no network beyond the test's server) and a fresh profile. limit bounds
// the browser's whole life.
func newBrowser(t *testing.T, path string, limit time.Duration) *browser {
	t.Helper()
	life, stopLife := context.WithTimeout(context.Background(), limit)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1100),
	)
	alloc, stopAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, stopTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		stopTab()
		stopAlloc() // waits for the browser to exit, before the profile directory is removed
		stopLife()
	})
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to life
		t.Fatalf("start %s: %v", path, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			if m.IsException() {
				b.exceptions = append(b.exceptions, m.String())
			}
			b.mu.Unlock()
		}
	}()
	return b
}

// run runs an action within d, failing the test with the page's console
// if it does not succeed.
func run[T any](t *testing.T, b *browser, what string, d time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.mu.Lock()
		console := strings.Join(b.console, "\n  ")
		b.mu.Unlock()
		t.Fatalf("%s: %v\nthe page's console:\n  %s", what, err, console)
	}
	return v
}

func TestServe_DashboardShowsProgressAndPausesInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service and a browser")
	}
	chromium := chromiumPath(t)
	sv := startServed(t)
	ctx := context.Background()
	a := sv.client(t, "fund-a-1")
	order := sellOrder("dash-1")
	order.Duration = "4h" // long enough that it is still working when the page pauses it
	if _, _, err := a.Submit(ctx, order); err != nil {
		t.Fatal(err)
	}
	// The engine's clock runs a minute every 200 ms until the order is
	// paused, so the page sees slices and fills within seconds.
	stopClock := make(chan struct{})
	clockStopped := make(chan struct{})
	go func() {
		defer close(clockStopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopClock:
				return
			case <-tick.C:
				sv.clk.Advance(time.Minute)
			}
		}
	}()
	var once sync.Once
	haltClock := func() { once.Do(func() { close(stopClock); <-clockStopped }) }
	t.Cleanup(haltClock)

	b := newBrowser(t, chromium, 2*time.Minute)
	const step = 20 * time.Second
	run(t, b, "open the page", step, chromedp.Steps(chromedp.Navigate(sv.url+"/"), chromedp.WaitVisible("#login-form")))

	// The page signs as api/sign.go does: the API document's test vector.
	sig := run(t, b, "sign the test vector", step, chromedp.Evaluate[string](`import("/ui/sign.js").then(async (m) =>
		m.sign(await m.importSecret("test-secret-not-real"), m.canonical("POST", "/v1/orders", "", 1732350000000,
			"n0nce-0123456789ab", await m.sha256Hex(new TextEncoder().encode('{"client_order_id":"c1"}')))))`,
		chromedp.EvalAwaitPromise))
	if want := "d7de2d8674bf4a543cac0c755d2a9b19a1a0ab12d21edb22423725766c64caf8"; sig != want {
		t.Fatalf("the page signs the test vector %s, want %s", sig, want)
	}

	run(t, b, "log in with a trade key", step, chromedp.Steps(
		chromedp.SetValue("#key-id", "fund-a-1"),
		chromedp.SetValue("#secret", string(sv.secrets["fund-a-1"])),
		chromedp.Click("#login-button"),
		chromedp.WaitVisible("#app"),
		chromedp.WaitVisible("#pause"),
	))
	who := run(t, b, "who the page says is logged in", step, chromedp.Text("#who"))
	if !strings.Contains(who, "fund-a-1") || !strings.Contains(who, "trade") {
		t.Errorf("#who reads %q", who)
	}
	first := run(t, b, "progress above 0 %", step, chromedp.Poll[float64](
		`(() => { const v = document.getElementById("progress").value; return v > 0 && v; })()`,
		chromedp.WithPollingInterval(100*time.Millisecond)))
	run(t, b, "progress moving on", step, chromedp.Poll[bool](
		`document.getElementById("progress").value > `+strconv.FormatFloat(first, 'g', -1, 64),
		chromedp.WithPollingInterval(100*time.Millisecond)))
	run(t, b, "the charts drawn", step, chromedp.Poll[bool](
		`document.querySelectorAll("#chart-qty .executed path").length > 0 &&
		 document.querySelectorAll("#chart-price .fills circle").length > 0 &&
		 document.querySelectorAll("#venues tbody tr").length > 0`,
		chromedp.WithPollingInterval(100*time.Millisecond)))

	run(t, b, "click pause", step, chromedp.Click("#pause"))
	run(t, b, "the state paused", step, chromedp.Poll[bool](
		`document.getElementById("state").textContent === "paused" && !document.getElementById("resume").hidden`,
		chromedp.WithPollingInterval(100*time.Millisecond)))
	haltClock()
	if o, err := a.Get(ctx, "dash-1"); err != nil || o.State != "paused" {
		t.Fatalf("the server has dash-1 %s (%v), want paused", o.State, err)
	}
	run(t, b, "the paused event in the log", step, chromedp.WaitVisible("#events li.paused"))

	shot := run(t, b, "screenshot", step, chromedp.FullScreenshot(100))
	path := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() == 0 || img.Bounds().Dy() == 0 {
		t.Fatalf("the screenshot (%d bytes) is no PNG with an area: %v", len(shot), err)
	}
	t.Logf("screenshot: %s, %dx%d, %d bytes", path, img.Bounds().Dx(), img.Bounds().Dy(), len(shot))
	if keep := os.Getenv("BLOCKEXEC_DASHBOARD_SCREENSHOT"); keep != "" { // a copy to look at, kept after the test
		if err := os.WriteFile(keep, shot, 0o644); err != nil {
			t.Error(err)
		}
	}

	// A read key sees the order but not the buttons.
	run(t, b, "log in with a read key", step, chromedp.Steps(
		chromedp.Click("#logout"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SetValue("#key-id", "viewer-1"),
		chromedp.SetValue("#secret", string(sv.secrets["viewer-1"])),
		chromedp.Click("#login-button"),
		chromedp.Poll[chromedp.Void](`document.getElementById("state").textContent === "paused"`,
			chromedp.WithPollingInterval(100*time.Millisecond)),
	))
	hidden := run(t, b, "the read key's buttons", step, chromedp.Evaluate[bool](
		`["pause", "resume", "cancel", "kill"].every((id) => document.getElementById(id).hidden)`))
	if !hidden {
		t.Errorf("a read key is offered buttons it may not use")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.exceptions) > 0 {
		t.Errorf("the page's scripts threw:\n  %s", strings.Join(b.exceptions, "\n  "))
	}
}
