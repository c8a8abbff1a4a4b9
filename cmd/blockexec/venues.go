package main

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/fx"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/binance"
	"github.com/blockexec/blockexec/venues/binance/binancefake"
	"github.com/blockexec/blockexec/venues/coinbase"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
	"github.com/blockexec/blockexec/venues/kraken"
	"github.com/blockexec/blockexec/venues/kraken/krakenfake"
	"github.com/blockexec/blockexec/venues/sim"
)

// venueOptions provides the configured venues into the "venues" value
// group, and stops the in-process fakes with the graph.
func venueOptions(cfg *configs.Config, j *job) fx.Option {
	return fx.Provide(fx.Annotate(
		func(clk clock.Clock, log zerolog.Logger, lc fx.Lifecycle) ([]engine.Venue, error) {
			b, err := buildVenues(cfg, clk, log)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(b.close))
			j.sims, j.secrets = b.sims, b.secrets
			if j.wrapVenue == nil {
				return b.list, nil
			}
			out := make([]engine.Venue, len(b.list))
			for i, v := range b.list {
				out[i] = j.wrapVenue(v)
			}
			return out, nil
		},
		fx.ResultTags(`group:"venues,flatten"`),
	))
}

// builtVenues are a config's venues and what stands behind them.
type builtVenues struct {
	list    []engine.Venue
	sims    []*sim.Venue // every sim venue, behind a fake or not
	closers []func()
	// secrets are the credentials handed to adapters, for the tests that
	// look for them where they must never be.
	secrets []venues.Secret
}

// close stops what was started, last first (a stream before its fake).
func (b *builtVenues) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// buildVenues makes one engine.Venue per configured venue: a sim venue, a
// real exchange's adapter, or that adapter against an in-process fake of
// the exchange over a sim venue. On error, what was started is stopped.
func buildVenues(cfg *configs.Config, clk clock.Clock, log zerolog.Logger) (_ *builtVenues, err error) {
	b := &builtVenues{}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	var m *sim.Market
	for i, vc := range cfg.Venues {
		path := fmt.Sprintf("venues[%d]", i)
		if vc.Simulated() && m == nil {
			if m, err = sim.NewMarket(simMarketConfig(cfg)); err != nil {
				return nil, fmt.Errorf("market: %w", err)
			}
		}
		var v engine.Venue
		switch {
		case vc.Kind == configs.KindSim:
			sv, serr := sim.New(m, clk, simVenueConfig(cfg, vc))
			if serr != nil {
				return nil, fmt.Errorf("venue %s: %w", vc.Name, serr)
			}
			b.sims = append(b.sims, sv)
			v = sv
		case vc.Fake:
			v, err = b.fakeVenue(cfg, vc, m, clk, log)
		default:
			v, err = b.realVenue(cfg, path, vc, clk, log)
		}
		if err != nil {
			return nil, err
		}
		b.startStream(v, log)
		b.list = append(b.list, v)
	}
	return b, nil
}

// streamer is a venue with a user data stream to follow its own fills.
type streamer interface {
	StartStream(ctx context.Context) error
	Close() error
}

// startStream subscribes a venue's user data stream where it has one; if
// that fails the venue works from REST, with a warning.
func (b *builtVenues) startStream(v engine.Venue, log zerolog.Logger) {
	s, ok := v.(streamer)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.StartStream(ctx); err != nil {
		log.Warn().Str("venue", v.Name()).Err(err).Msg("user data stream unavailable; fills come from REST")
		return
	}
	b.closers = append(b.closers, func() { _ = s.Close() })
}

// realVenue builds an adapter for a real exchange, with its credentials read
// from where the config says. A credential that cannot be read is an error
// on the config line that names its source.
func (b *builtVenues) realVenue(cfg *configs.Config, path string, vc configs.Venue, clk clock.Clock, log zerolog.Logger) (engine.Venue, error) {
	if _, virtual := clk.(*clock.Virtual); virtual {
		return nil, cfg.FieldError("run.clock", fmt.Sprintf("%s (%s) is a real exchange, which trades in real time: set run.clock: wall, or fake: true to rehearse against an in-process fake", vc.Name, vc.Kind))
	}
	key, err := readSecret(cfg, path+".api_key", vc.APIKey)
	if err != nil {
		return nil, err
	}
	secret, err := readSecret(cfg, path+".api_secret", vc.APISecret)
	if err != nil {
		return nil, err
	}
	b.secrets = append(b.secrets, key, secret)
	switch vc.Kind {
	case configs.KindBinance:
		bc := binance.Config{Name: vc.Name, BaseURL: vc.BaseURL, Testnet: vc.Testnet, APIKey: key, SecretKey: secret,
			RecvWindow: vc.RecvWindow}
		if vc.FeesSet {
			bc.MakerFee, bc.TakerFee = vc.MakerFeeBps.Div(bps), vc.TakerFeeBps.Div(bps)
		}
		return binance.New(bc, clk, log)
	case configs.KindCoinbase:
		cc := coinbase.Config{Name: vc.Name, BaseURL: vc.BaseURL, KeyName: key, PrivateKey: secret, Symbols: vc.Symbols}
		if vc.FeesSet {
			cc.MakerFee, cc.TakerFee = vc.MakerFeeBps.Div(bps), vc.TakerFeeBps.Div(bps)
		}
		return coinbase.New(cc, clk, log)
	case configs.KindKraken:
		kc := kraken.Config{Name: vc.Name, BaseURL: vc.BaseURL, APIKey: key, Secret: secret, Symbols: vc.Symbols}
		if vc.FeesSet {
			kc.MakerFee, kc.TakerFee = vc.MakerFeeBps.Div(bps), vc.TakerFeeBps.Div(bps)
		}
		return kraken.New(kc, clk, log)
	}
	return nil, cfg.FieldError(path+".kind", fmt.Sprintf("kind %s has no adapter", vc.Kind))
}

// readSecret reads one credential from its environment variable or file.
func readSecret(cfg *configs.Config, path string, src configs.SecretSource) (venues.Secret, error) {
	if src.Env != "" {
		s, err := venues.SecretFromEnv(src.Env)
		if err != nil {
			return s, cfg.FieldError(path+"_env", err.Error())
		}
		return s, nil
	}
	s, err := venues.SecretFromFile(src.File)
	if err != nil {
		return s, cfg.FieldError(path+"_file", err.Error())
	}
	return s, nil
}

// fakeVenue starts the exchange's protocol fake on loopback over a sim
// venue of the run's market, with credentials made up for this run, and
// returns the real adapter pointed at it. The fake stops with the graph.
func (b *builtVenues) fakeVenue(cfg *configs.Config, vc configs.Venue, m *sim.Market, clk clock.Clock,
	log zerolog.Logger) (engine.Venue, error) {
	core, err := sim.New(m, clk, simVenueConfig(cfg, vc))
	if err != nil {
		return nil, fmt.Errorf("venue %s: %w", vc.Name, err)
	}
	b.sims = append(b.sims, core)
	hc := &http.Client{Timeout: 5 * time.Second}
	started := func(url string, closer func()) {
		b.closers = append(b.closers, closer)
		log.Info().Str("venue", vc.Name).Str("kind", vc.Kind).Str("url", url).Msg("in-process fake exchange")
	}
	switch vc.Kind {
	case configs.KindBinance:
		key, secret := randomToken(), randomToken()
		b.secrets = append(b.secrets, venues.NewSecret(key), venues.NewSecret(secret))
		// The key is made for this run and reachable on loopback only.
		fake, err := binancefake.New(binancefake.Options{Venue: core, APIKey: key, Secret: secret, Clock: clk,
			Restrictions: &binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true, IPRestrict: true}})
		if err != nil {
			return nil, fmt.Errorf("venue %s: fake exchange: %w", vc.Name, err)
		}
		started(fake.URL(), fake.Close)
		return binance.New(binance.Config{Name: vc.Name, BaseURL: fake.URL(), APIKey: venues.NewSecret(key),
			SecretKey: venues.NewSecret(secret), HTTPClient: hc}, clk, log)
	case configs.KindCoinbase:
		name, pem, pub, err := coinbasefake.NewKey()
		if err != nil {
			return nil, fmt.Errorf("venue %s: fake exchange key: %w", vc.Name, err)
		}
		b.secrets = append(b.secrets, venues.NewSecret(name), venues.NewSecret(pem))
		fake, err := coinbasefake.New(coinbasefake.Options{Venue: core, KeyName: name, PublicKey: pub, Clock: clk})
		if err != nil {
			return nil, fmt.Errorf("venue %s: fake exchange: %w", vc.Name, err)
		}
		started(fake.URL(), fake.Close)
		return coinbase.New(coinbase.Config{Name: vc.Name, BaseURL: fake.URL(), KeyName: venues.NewSecret(name),
			PrivateKey: venues.NewSecret(pem), HTTPClient: hc}, clk, log)
	case configs.KindKraken:
		key, secret, err := krakenfake.NewCredentials()
		if err != nil {
			return nil, fmt.Errorf("venue %s: fake exchange key: %w", vc.Name, err)
		}
		b.secrets = append(b.secrets, venues.NewSecret(key), venues.NewSecret(secret))
		fake, err := krakenfake.New(krakenfake.Options{Venue: core, APIKey: key, Secret: secret, Clock: clk,
			ServerClock: clock.Wall{}})
		if err != nil {
			return nil, fmt.Errorf("venue %s: fake exchange: %w", vc.Name, err)
		}
		started(fake.URL(), fake.Close)
		return kraken.New(kraken.Config{Name: vc.Name, BaseURL: fake.URL(), APIKey: venues.NewSecret(key),
			Secret: venues.NewSecret(secret), HTTPClient: hc}, clk, log)
	}
	return nil, fmt.Errorf("venue %s: kind %s has no fake", vc.Name, vc.Kind)
}

// keyChecker is a venue that can report on its API key without trading.
type keyChecker interface {
	CheckKey(ctx context.Context) (venues.KeyReport, error)
}

// checkKeys asks every real venue about its key before anything is placed:
// a key that can withdraw is refused, warnings are logged.
func (j *job) checkKeys(ctx context.Context) error {
	for i, vc := range j.cfg.Venues {
		v, ok := j.eng.Venue(vc.Name)
		kc, can := v.(keyChecker)
		if !ok || !can {
			continue
		}
		rep, err := kc.CheckKey(ctx)
		switch {
		case venues.IsReject(err): // a key the venue refuses
			return &exitError{exitBadConfig, j.cfg.FieldError(fmt.Sprintf("venues[%d].api_key", i), "key check: "+err.Error())}
		case errors.Is(err, venues.ErrUnavailable):
			// Dark or rate limited now: acceptance waits for it, or works the
			// parents on the other venues.
			j.log.Warn().Str("venue", vc.Name).Err(err).Msg("venue unavailable for the key check; the run goes on without it until it answers")
			continue
		case err != nil:
			return &exitError{exitFailed, fmt.Errorf("venue %s: key check: %w", vc.Name, err)}
		}
		if err := rep.Refusal(); err != nil {
			return &exitError{exitBadConfig, j.cfg.FieldError(fmt.Sprintf("venues[%d].api_key", i), err.Error())}
		}
		for _, w := range rep.Warnings {
			j.log.Warn().Str("venue", vc.Name).Msg(w)
		}
		j.log.Info().Str("venue", vc.Name).Str("clock_skew", rep.ClockSkew.Round(time.Millisecond).String()).Strs("permissions", rep.Permissions).
			Str("rate_limit", rep.RateLimit).Msg("api key checked")
	}
	return nil
}

// randomToken is 32 random hex characters: credentials of an in-process
// fake, valid for one run.
func randomToken() string {
	var b [16]byte
	_, _ = cryptorand.Read(b[:])
	return hex.EncodeToString(b[:])
}
