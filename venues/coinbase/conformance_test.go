package coinbase

import (
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
	"github.com/blockexec/blockexec/venues/venuetest"
)

var (
	_ engine.Venue         = (*Venue)(nil)
	_ engine.FillLister    = (*Venue)(nil)
	_ engine.ClientIDRules = (*Venue)(nil)
)

func TestConformance(t *testing.T) {
	venuetest.Run(t, venuetest.Rules, func(t *testing.T, env venuetest.Env) venuetest.Rig {
		keyName, pemText, pub, err := coinbasefake.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		fake, err := coinbasefake.New(coinbasefake.Options{Venue: env.Sim, KeyName: keyName, PublicKey: pub,
			Clock: env.Clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		signWith := pemText
		if env.WrongSecret {
			if _, signWith, _, err = coinbasefake.NewKey(); err != nil {
				t.Fatal(err)
			}
		}
		v, err := New(Config{Name: "coinbase", BaseURL: fake.URL(), KeyName: venues.NewSecret(keyName),
			PrivateKey: venues.NewSecret(signWith), HTTPClient: &http.Client{Timeout: env.Timeout}}, env.Clock,
			zerolog.New(env.Logs).Level(zerolog.DebugLevel))
		if err != nil {
			t.Fatal(err)
		}
		v.tradesPage = 100 // so that the suite's 90-minute window takes several pages
		return venuetest.Rig{Venue: v, Server: fake.Server(), Faults: fake.Faults(), PlaceMethod: http.MethodPost,
			PlacePath: coinbasefake.PathOrders, Placed: fake.Placed, Secrets: []string{keyName, signWith}}
	})
}
