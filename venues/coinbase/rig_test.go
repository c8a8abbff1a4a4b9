package coinbase

import (
	"context"
	"crypto/ecdsa"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
	"github.com/blockexec/blockexec/venues/sim"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// rig is an adapter pointed at a fake over a fresh sim venue, with every
// request it sends recorded.
type rig struct {
	v       *Venue
	fake    *coinbasefake.Server
	sim     *sim.Venue
	clk     *clock.Virtual
	logs    *venuetest.LogBuffer
	rec     *recorder
	keyName string
	pemText string
	pub     *ecdsa.PublicKey
}

// newRig builds a rig; tweak may change the adapter's config and the
// fake's options before either is built (BaseURL is the fake's unless set).
func newRig(t *testing.T, tweak func(*Config, *coinbasefake.Options)) *rig {
	t.Helper()
	m, err := sim.NewMarket(sim.MarketConfig{Seed: 3, Symbol: venuetest.Symbol, Base: "BTC", Quote: "USDT",
		StartPrice: venuetest.D("63000"), Start: venuetest.T0.Add(-8 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(venuetest.T0)
	sv, err := sim.New(m, clk, sim.Config{Name: "core", Share: 0.5, Instrument: venuetest.Rules})
	if err != nil {
		t.Fatal(err)
	}
	keyName, pemText, pub, err := coinbasefake.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{sim: sv, clk: clk, logs: &venuetest.LogBuffer{}, rec: &recorder{next: http.DefaultTransport}, keyName: keyName,
		pemText: pemText, pub: pub}
	cfg := Config{Name: "coinbase", KeyName: venues.NewSecret(keyName), PrivateKey: venues.NewSecret(pemText),
		HTTPClient: &http.Client{Timeout: 2 * time.Second, Transport: r.rec}}
	opts := coinbasefake.Options{Venue: sv, KeyName: keyName, PublicKey: pub, Clock: clk}
	if tweak != nil {
		tweak(&cfg, &opts)
	}
	if r.fake, err = coinbasefake.New(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.fake.Close)
	if cfg.BaseURL == "" {
		cfg.BaseURL = r.fake.URL()
	}
	if r.v, err = New(cfg, clk, zerolog.New(r.logs).Level(zerolog.DebugLevel)); err != nil {
		t.Fatal(err)
	}
	return r
}

// recorder is a transport that notes each request (method, path, query,
// bearer token) and may rewrite it after it was signed.
type recorder struct {
	next    http.RoundTripper
	rewrite func(*http.Request)

	mu   sync.Mutex
	sent []sentRequest
}

type sentRequest struct {
	Method, Path, Query, Token string
}

// RoundTrip records req and sends it on.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.sent = append(r.sent, sentRequest{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery,
		Token: strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")})
	rw := r.rewrite
	r.mu.Unlock()
	if rw != nil {
		req = req.Clone(req.Context())
		rw(req)
	}
	return r.next.RoundTrip(req)
}

// requests returns what was sent so far.
func (r *recorder) requests() []sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentRequest(nil), r.sent...)
}

// count returns how many requests went to path.
func (r *recorder) count(path string) int {
	n := 0
	for _, s := range r.requests() {
		if s.Path == path {
			n++
		}
	}
	return n
}

// offsetClock is the wall clock moved by d.
type offsetClock struct{ d time.Duration }

func (o offsetClock) Now() time.Time { return time.Now().UTC().Add(o.d) }

func (o offsetClock) WaitUntil(ctx context.Context, t time.Time) error {
	return clock.Wall{}.WaitUntil(ctx, t.Add(-o.d))
}
