package kraken

import (
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/kraken/krakenfake"
	"github.com/blockexec/blockexec/venues/venuetest"
)

var (
	_ engine.Venue            = (*Venue)(nil)
	_ engine.FillLister       = (*Venue)(nil)
	_ engine.ClientIDRules    = (*Venue)(nil)
	_ engine.ClientIDAlphabet = (*Venue)(nil)
)

// xbtusdt are Kraken's XBT/USDT rules as AssetPairs states them (tick_size
// 0.1, lot_decimals 8, ordermin 0.00005, costmin 0.5) with the first fee
// tier (0.25 % maker, 0.40 % taker).
var xbtusdt = market.Instrument{Tick: venuetest.D("0.1"), Step: venuetest.D("0.00000001"),
	MinQty: venuetest.D("0.00005"), MinNotional: venuetest.D("0.5"), MakerFee: venuetest.D("0.0025"),
	TakerFee: venuetest.D("0.004")}

func TestConformance(t *testing.T) {
	venuetest.Run(t, xbtusdt, func(t *testing.T, env venuetest.Env) venuetest.Rig {
		key, secret, err := krakenfake.NewCredentials()
		if err != nil {
			t.Fatal(err)
		}
		fake, err := krakenfake.New(krakenfake.Options{Venue: env.Sim, APIKey: key, Secret: secret, Clock: env.Clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		held := secret
		if env.WrongSecret {
			if _, held, err = krakenfake.NewCredentials(); err != nil {
				t.Fatal(err)
			}
		}
		v, err := New(Config{Name: "kraken", BaseURL: fake.URL(), APIKey: venues.NewSecret(key),
			Secret: venues.NewSecret(held), HTTPClient: &http.Client{Timeout: env.Timeout}}, env.Clock,
			zerolog.New(env.Logs).Level(zerolog.DebugLevel))
		if err != nil {
			t.Fatal(err)
		}
		return venuetest.Rig{Venue: v, Server: fake.Server(), Faults: fake.Faults(), PlaceMethod: http.MethodPost,
			PlacePath: "/0/private/AddOrder", Placed: fake.Placed, Secrets: []string{key, secret, held}}
	})
}
