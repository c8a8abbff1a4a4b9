// Package venuetest is the conformance suite every real-exchange adapter
// runs against its protocol fake: the same instrument rules, book, tape,
// orders, refusals and failure modes, checked the same way for each
// exchange, through the adapter's real client over HTTP.
//
// An adapter's test calls Run with a Factory that starts its fake over the
// sim venue it is given and points the adapter at it.
package venuetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/sim"
)

// Symbol is the engine's symbol for the market every rig trades: BTC
// against USDT. Each fake lists it under its exchange's own name.
const Symbol = "BTCUSDT"

// T0 is the rigs' start time: a Tuesday morning with eight hours of market
// behind it.
var T0 = time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)

// Rules are the default instrument rules of the suite: a quantity step
// that is not a power of ten, so an adapter that rounds to decimals fails.
// A venue whose protocol can only say decimals (Kraken's lot_decimals)
// passes its own. The suite's quantities (0.3, 0.51, 1.002, 2.001, 6) are
// on any step that divides 0.001 or 0.003.
var Rules = market.Instrument{Symbol: Symbol, Base: "BTC", Quote: "USDT", Tick: D("0.01"), Step: D("0.003"),
	MinQty: D("0.003"), MinNotional: D("5"), MakerFee: D("0.001"), TakerFee: D("0.001")}

// D parses a decimal literal.
func D(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// Env is what a Factory gets: the matching core its fake must serve, the
// market clock, and where the adapter logs.
type Env struct {
	Clock *clock.Virtual
	Sim   *sim.Venue
	// Logs receives the adapter's logs at debug level.
	Logs io.Writer
	// WrongSecret asks for an adapter whose secret (or private key) the
	// fake does not accept.
	WrongSecret bool
	// Timeout is the adapter's HTTP timeout for the rig (short, so that
	// the timeout faults end quickly).
	Timeout time.Duration
}

// Rig is one adapter pointed at its fake.
type Rig struct {
	Venue  engine.Venue
	Server *fakex.Server
	Faults *fakex.Faults
	// PlaceMethod and PlacePath select the order placement request, for
	// faults.
	PlaceMethod, PlacePath string
	// Placed returns the client ids of every order the fake accepted, in
	// order, one entry per accepted placement.
	Placed func() []string
	// Secrets are the credentials the adapter holds (keys, secrets, PEM
	// text); none may appear in logs, errors or published messages.
	Secrets []string
}

// Factory starts a fake over env.Sim and returns the adapter pointed at it.
// It registers its own cleanup.
type Factory func(t *testing.T, env Env) Rig

// Run runs the whole suite as subtests, with the sim venue behind the fake
// trading under rules (Symbol BTCUSDT, base BTC, quote USDT).
func Run(t *testing.T, rules market.Instrument, f Factory) {
	run := func(name string, check func(*testing.T, fixture)) {
		t.Run(name, func(t *testing.T) { check(t, setup(t, f, rules, name == "WrongSecretIsARefusalThatNamesNoSecret")) })
	}
	run("InstrumentCarriesTheVenuesRules", instrument)
	run("BookMatchesTheMatchingCore", book)
	run("TapeAddsUpToTheVenueVolume", tape)
	run("IOCFillsFeesLookupAndOwnTrades", place)
	run("IOCBeyondTheBookFillsInPartAndExpires", partial)
	run("RefusalsAreTyped", refusals)
	run("RestingOrderCancelsByClientID", cancel)
	run("WrongSecretIsARefusalThatNamesNoSecret", wrongSecret)
	run("AcceptThen5xxNeverPlacesTwice", func(t *testing.T, x fixture) { lostAck(t, x, fakex.AcceptThen5xx) })
	run("AcceptThenTimeoutNeverPlacesTwice", func(t *testing.T, x fixture) { lostAck(t, x, fakex.AcceptThenTimeout) })
	run("RateLimitStormSlowsTheParentInsteadOfFailingIt", storm)
	run("DarkVenueShareMovesToTheOthers", dark)
	run("NoSecretInLogsEventsOrFills", noSecrets)
}

// fixture is one rig and what stands behind it.
type fixture struct {
	r      Rig
	sim    *sim.Venue
	market *sim.Market
	clk    *clock.Virtual
	logs   *LogBuffer
	rules  market.Instrument
}

// setup builds the market, the sim venue and the rig.
func setup(t *testing.T, f Factory, rules market.Instrument, wrongSecret bool) fixture {
	t.Helper()
	m, err := sim.NewMarket(sim.MarketConfig{Seed: 3, Symbol: Symbol, Base: "BTC", Quote: "USDT",
		StartPrice: D("63000"), Start: T0.Add(-8 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(T0)
	rules.Symbol, rules.Base, rules.Quote = Symbol, "BTC", "USDT"
	sv, err := sim.New(m, clk, sim.Config{Name: "core", Share: 0.5, Instrument: rules})
	if err != nil {
		t.Fatal(err)
	}
	logs := &LogBuffer{}
	r := f(t, Env{Clock: clk, Sim: sv, Logs: logs, WrongSecret: wrongSecret, Timeout: 500 * time.Millisecond})
	return fixture{r: r, sim: sv, market: m, clk: clk, logs: logs, rules: rules}
}

// LogBuffer is a bytes.Buffer safe for an adapter's concurrent logging.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// published keeps what the engine publishes, as the JSON that would go on
// the bus.
type published struct {
	mu    sync.Mutex
	fills int
	raw   bytes.Buffer
}

func (p *published) PublishFill(_ context.Context, m bus.FillMsg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fills++
	return json.NewEncoder(&p.raw).Encode(m)
}

func (p *published) PublishEvent(_ context.Context, m bus.EventMsg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return json.NewEncoder(&p.raw).Encode(m)
}

// runParent sells qty over 20 one-minute slices on vs, band 100 bps, no
// participation cap.
func runParent(t *testing.T, clk clock.Clock, vs []engine.Venue, qty string, logs io.Writer) (engine.Summary, *published) {
	t.Helper()
	kill := risk.NewKillSwitch(false)
	pub := &published{}
	eng, err := engine.New(clk, vs, risk.NewChecker(kill), kill, pub, zerolog.New(logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	sums, err := eng.Run(context.Background(), []engine.ParentSpec{{ID: "p1", Side: market.Sell, Symbol: Symbol,
		Qty: D(qty), Strategy: "twap", Start: T0, End: T0.Add(20 * time.Minute), SliceInterval: time.Minute,
		MaxParticipation: D("1"), BandBps: D("100")}})
	if err != nil {
		t.Fatal(err)
	}
	return sums[0], pub
}
