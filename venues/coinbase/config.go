// Package coinbase is the Coinbase Advanced Trade adapter: instrument rules
// from the product, depth from product_book, public volume from the
// product's market trades, limit orders (sor_limit_ioc, limit_limit_gtc with
// or without post_only) under our client ids, lookup and cancel by client
// id, our fills, and the exchange's failure modes mapped onto the engine's:
// a definite refusal is a *venues.RejectError, an answer we could not read
// (5xx, timeout, a body that is not the documented JSON) is "unknown" and
// the engine looks the order up before it places again, a 429 makes the
// venue stop sending until Retry-After.
//
// Every request carries an ES256 JWT signed with the key's EC private key
// (kid and sub the key name, iss "cdp", nbf now, exp two minutes later, uri
// "METHOD host/path"), as Coinbase's CDP key authentication specifies.
//
// Where Coinbase's documentation is silent the adapter assumes, and says so
// where it does: the 429 body and Retry-After (absent: a minute), the
// status of an IOC remainder (EXPIRED or CANCELLED), the length of a
// client_order_id (we keep to 36, a UUID's length).
package coinbase

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/venues"
)

// DefaultBaseURL is Coinbase Advanced Trade's REST endpoint.
const DefaultBaseURL = "https://api.coinbase.com"

// Limits and defaults the adapter keeps to.
const (
	defaultName = "coinbase"
	// maxClientIDLen: Coinbase publishes no limit for client_order_id; its
	// SDKs send UUIDs, so we keep to a UUID's 36 characters.
	maxClientIDLen = 36
	// defaultTimeout bounds a request when Config.HTTPClient is nil.
	defaultTimeout = 10 * time.Second
	// maxFee guards against a fee given in percent or bps: Coinbase's
	// highest tier charges 1.2 % as taker.
	maxFee = "0.05"
	// tradesPage is how many market trades one ticker request asks for
	// (the documented maximum is 1000).
	tradesPage = 1000
	// ordersLookback bounds the list of recent orders searched for a
	// client id whose placement answer was lost.
	ordersLookback = 24 * time.Hour
)

// Config is one Coinbase Advanced Trade venue.
type Config struct {
	// Name is the venue's name in the engine; default "coinbase".
	Name string
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string
	// KeyName is the CDP API key's name, organizations/{org}/apiKeys/{key}.
	KeyName venues.Secret
	// PrivateKey is the key's EC P-256 private key, PEM (SEC1 "EC PRIVATE
	// KEY" as Coinbase hands it out, or PKCS#8); escaped "\n" are accepted.
	PrivateKey venues.Secret
	// Symbols maps an engine symbol (BTCUSDT) to a product id (BTC-USDT).
	// Unmapped symbols are found among the products by base_currency_id +
	// quote_currency_id.
	Symbols map[string]string
	// MakerFee and TakerFee are fractions (0.006 is 60 bps). Both zero:
	// the account's fee tier, read from transaction_summary.
	MakerFee, TakerFee decimal.Decimal
	// HTTPClient defaults to a client with a 10 s timeout.
	HTTPClient *http.Client
	// AuthClock is the wall clock that dates JWTs (nbf, exp) and measures
	// latency; default clock.Wall.
	AuthClock clock.Clock
}

// Venue is a Coinbase Advanced Trade account for the engine. Safe for
// concurrent use.
type Venue struct {
	name       string
	base       *url.URL
	http       *http.Client
	clk        clock.Clock // market clock: book times, windows, rate-limit pauses
	auth       clock.Clock // wall clock: JWTs, latency
	log        zerolog.Logger
	sign       *signer
	symbols    map[string]string
	makerFee   decimal.Decimal
	takerFee   decimal.Decimal
	fixedFees  bool
	tradesPage int // market trades per ticker request; tests page sooner

	mu       sync.Mutex
	products map[string]product // by engine symbol
	fees     *feeRates
	orderOf  map[string]string // client id → order id
	clientOf map[string]string // order id → client id
	until    time.Time         // rate limited until (market clock)
}

// New validates cfg and returns the adapter. Nothing is sent until the
// first call. clk is the engine's market clock.
func New(cfg Config, clk clock.Clock, log zerolog.Logger) (*Venue, error) {
	if clk == nil {
		return nil, errors.New("coinbase: a market clock is required")
	}
	if cfg.Name == "" {
		cfg.Name = defaultName
	}
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("coinbase venue %q: %s: %s", cfg.Name, field, fmt.Sprintf(format, a...))
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" || base.RawQuery != "" ||
		base.Fragment != "" {
		return nil, bad("base_url", "%q is not an http(s) URL without query", cfg.BaseURL)
	}
	if cfg.KeyName.Empty() {
		return nil, bad("key_name", "required (the CDP key's name, .../apiKeys/{key})")
	}
	if strings.ContainsAny(cfg.KeyName.Reveal(), " \t\r\n\"") {
		return nil, bad("key_name", "has whitespace or quotes; paste the name alone")
	}
	if cfg.PrivateKey.Empty() {
		return nil, bad("private_key", "required (the key's EC private key, PEM)")
	}
	key, err := parsePrivateKey(cfg.PrivateKey.Reveal())
	if err != nil {
		return nil, bad("private_key", "%v", err)
	}
	for sym, id := range cfg.Symbols {
		if sym == "" || strings.TrimSpace(id) == "" {
			return nil, bad("symbols", "%q maps to %q; both must be set", sym, id)
		}
	}
	limit := decimal.RequireFromString(maxFee)
	if cfg.TakerFee.Sign() < 0 || !cfg.TakerFee.LessThan(limit) {
		return nil, bad("taker_fee", "%s must be a fraction in [0, %s)", cfg.TakerFee, maxFee)
	}
	if !cfg.MakerFee.Abs().LessThan(limit) {
		return nil, bad("maker_fee", "%s must be a fraction in (-%s, %s)", cfg.MakerFee, maxFee, maxFee)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultTimeout}
	}
	if cfg.AuthClock == nil {
		cfg.AuthClock = clock.Wall{}
	}
	symbols := make(map[string]string, len(cfg.Symbols))
	for sym, id := range cfg.Symbols {
		symbols[sym] = strings.TrimSpace(id)
	}
	return &Venue{
		name: cfg.Name, base: base, http: cfg.HTTPClient, clk: clk, auth: cfg.AuthClock,
		log:  log.With().Str("venue", cfg.Name).Logger(),
		sign: &signer{keyName: cfg.KeyName, key: key, clk: cfg.AuthClock}, symbols: symbols,
		makerFee: cfg.MakerFee, takerFee: cfg.TakerFee, fixedFees: !cfg.MakerFee.IsZero() || !cfg.TakerFee.IsZero(),
		tradesPage: tradesPage,
		products:   map[string]product{}, orderOf: map[string]string{}, clientOf: map[string]string{},
	}, nil
}

// Name returns the venue's configured name.
func (v *Venue) Name() string { return v.name }

// MaxClientIDLen is the longest client order id the adapter sends.
func (v *Venue) MaxClientIDLen() int { return maxClientIDLen }

// remember records that clientID is order orderID.
func (v *Venue) remember(clientID, orderID string) {
	if clientID == "" || orderID == "" {
		return
	}
	v.mu.Lock()
	v.orderOf[clientID] = orderID
	v.clientOf[orderID] = clientID
	v.mu.Unlock()
}

// knownOrder returns the order id of clientID if we have seen it.
func (v *Venue) knownOrder(clientID string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id, ok := v.orderOf[clientID]
	return id, ok
}

// knownClient returns the client id of orderID if we have seen it.
func (v *Venue) knownClient(orderID string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id, ok := v.clientOf[orderID]
	return id, ok
}
