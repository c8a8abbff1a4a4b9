package backtest

import (
	"bytes"
	"context"
	stdpng "image/png"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues/sim"
)

var day0 = time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)

// synthetic is n days of a flat market with a busy afternoon.
func synthetic(n int) []sim.Minute {
	out := make([]sim.Minute, 0, n*1440)
	px := 60000.0
	for i := 0; i < n*1440; i++ {
		at := day0.Add(time.Duration(i) * time.Minute)
		next := px // a flat price isolates the cost of trading
		vol := 12 * (1 + 0.8*math.Exp(-math.Pow(float64(at.Hour())-14, 2)/6))
		out = append(out, sim.Minute{Open: at, OpenPx: px, ClosePx: next, Volume: vol, QuoteVolume: vol * (px + next) / 2})
		px = next
	}
	return out
}

func testConfig() Config {
	in := func(fee string) market.Instrument {
		return market.Instrument{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT", Tick: decimal.RequireFromString("0.01"),
			Step: decimal.RequireFromString("0.00001"), MinQty: decimal.RequireFromString("0.00001"),
			MinNotional: decimal.RequireFromString("5"), TakerFee: decimal.RequireFromString(fee)}
	}
	return Config{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT", Side: market.Sell, Qty: decimal.NewFromInt(100),
		StartOfDay: 8 * time.Hour, Duration: 8 * time.Hour, SliceInterval: time.Minute,
		MaxParticipation: decimal.RequireFromString("0.1"), BandBps: decimal.NewFromInt(75),
		Venues: []VenueSpec{{"simA", 0.5, in("0.0004")}, {"simB", 0.3, in("0.0005")}, {"simC", 0.2, in("0.0006")}}}
}

func TestRun_BaselinesSideBySide(t *testing.T) {
	data := synthetic(3)
	days := []time.Time{day0.Add(24 * time.Hour), day0.Add(48 * time.Hour)}
	calls := 0
	res, _, err := Run(context.Background(), data, testConfig(), []Strategy{TWAP(), Dump("simA"), TWAPTouch("simA")}, days,
		func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 6 || calls != 6 {
		t.Fatalf("%d results, %d progress calls; want 6", len(res), calls)
	}
	rows := Table(res)
	by := map[string]Row{}
	for _, r := range rows {
		by[r.Strategy] = r
	}
	if by["dump"].MeanShortfallBps <= by["twap"].MeanShortfallBps {
		t.Errorf("dumping 100 BTC at once cost %.2f bps, TWAP %.2f: impact should make the dump dearer",
			by["dump"].MeanShortfallBps, by["twap"].MeanShortfallBps)
	}
	if by["twap"].MaxParticipation > 0.1+1e-9 {
		t.Errorf("TWAP participation %.4f above the cap", by["twap"].MaxParticipation)
	}
	for _, r := range rows {
		if r.MeanCompletion < 0.99 || r.Days != 2 {
			t.Errorf("%s: completion %.3f over %d days", r.Strategy, r.MeanCompletion, r.Days)
		}
	}
	if by["dump"].MeanChildOrders > 3 {
		t.Errorf("dump placed %.1f children a day, want one per venue", by["dump"].MeanChildOrders)
	}
}

func TestRun_RefusesDaysOutsideTheData(t *testing.T) {
	_, _, err := Run(context.Background(), synthetic(1), testConfig(), []Strategy{TWAP()}, []time.Time{day0.Add(48 * time.Hour)}, nil)
	if err == nil {
		t.Fatal("a day beyond the data was accepted")
	}
}

func TestWriteChart_ValidImagesOfTheExpectedSize(t *testing.T) {
	data := synthetic(2)
	day := day0.Add(24 * time.Hour)
	res, _, err := Run(context.Background(), data, testConfig(), []Strategy{TWAP(), Dump("simA")}, []time.Time{day}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var png bytes.Buffer
	if err := WriteChart(&png, day, res, "png"); err != nil {
		t.Fatal(err)
	}
	img, err := stdpng.Decode(&png)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != ChartWidth || b.Dy() != ChartHeight {
		t.Fatalf("PNG is %dx%d", b.Dx(), b.Dy())
	}
	var svg bytes.Buffer
	if err := WriteChart(&svg, day, res, "svg"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svg.String(), "<svg") || !strings.Contains(svg.String(), "twap") || !strings.Contains(svg.String(), "dump") {
		t.Fatalf("SVG without the series: %.200s", svg.String())
	}
	if err := WriteChart(&svg, day, res, "gif"); err == nil {
		t.Fatal("gif accepted")
	}
}
