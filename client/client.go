// Package client is the Go client of the blockexec service's HTTP API:
// typed calls that sign every request (package api's scheme), decode the
// API's errors to *api.Error, and retry only where a retry cannot do a
// thing twice.
//
// Retries, per call (Config.Retries more attempts at most, waiting on the
// Config's Clock: the 429's Retry-After, else Backoff doubling):
//
//   - Submit, Get, List, Fills, Health and the Events stream retry on any
//     transport error (refused, reset, timed out, cut mid-answer), on 5xx
//     and on 429. A Submit is safe to repeat: every attempt sends the same
//     client_order_id and the same body, which the server answers with the
//     order it made the first time (200, created false).
//   - Pause, Resume, Cancel and Amend retry on the same: each sets a state
//     or absolute terms (never a delta), so the second application of one
//     leaves the order as the first did. A Cancel whose retry is told the
//     order has ended (409) looks the order up and succeeds if it is
//     cancelled: the earlier attempt did it.
//   - Kill retries only when nothing can have happened: on 429 (the server
//     refuses before acting) and on a transport error before the request
//     was written in full (refused connection, failed TLS, DNS). A timeout
//     or a cut after the request was written is returned, since the kill
//     may have run; a second one would also cancel orders submitted since.
//
// Every attempt is signed afresh: a new timestamp from the Clock and a new
// nonce. No error of this package holds the secret, a signature or a
// request's header values.
package client

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/blockexec/blockexec/clock"
)

// Defaults of a Config's zero fields.
const (
	DefaultRetries    = 3
	DefaultBackoff    = 200 * time.Millisecond
	DefaultTimeout    = 30 * time.Second
	DefaultStreamIdle = time.Minute
	// maxBackoff caps the doubling; a Retry-After is honoured as given.
	maxBackoff = 30 * time.Second
)

// Errors of the client itself (the server's are *api.Error).
var (
	// ErrNoID is an empty order id: it would name another route.
	ErrNoID = errors.New("client: an order id is required")
	// ErrConfig is a Config that New refuses.
	ErrConfig = errors.New("client: bad config")
)

const redacted = "[REDACTED]"

// Config says where the service is and which key signs.
//
// Printing a Config with fmt (every verb), encoding/json or log/slog shows
// Secret as [REDACTED]. fmt cannot call those methods on a Config kept in
// an unexported field of another struct, so do not keep one: New copies
// the secret, after which the caller can clear its slice.
type Config struct {
	// BaseURL is the service's root, e.g. https://blockexec.example:8480.
	// Requests go to BaseURL's path + /v1/...; the signature covers that
	// whole path, so a proxy in front must not rewrite it.
	BaseURL string
	// KeyID names the API key (sent as api.HeaderKey).
	KeyID string
	// Secret is the key's secret, which signs every request.
	Secret []byte
	// HTTPClient sends the requests; nil uses a new http.Client. New
	// copies it: redirects are not followed, and its Timeout, if any, is
	// not applied to the Events stream.
	HTTPClient *http.Client
	// Clock stamps requests and times the waits between attempts; nil is
	// clock.Wall{}. Network timeouts (Timeout, StreamIdle) are real time.
	Clock clock.Clock
	// Retries is how many times a call may be retried after its first
	// attempt: 0 means DefaultRetries, a negative number none.
	Retries int
	// Backoff is the first wait before a retry, doubling on each; 0 means
	// DefaultBackoff.
	Backoff time.Duration
	// Timeout bounds each attempt of a call (not the Events stream); 0
	// means DefaultTimeout.
	Timeout time.Duration
	// StreamIdle is how long the Events stream may stay silent (no event,
	// no heartbeat) before it is taken for dead and reopened; 0 means
	// DefaultStreamIdle.
	StreamIdle time.Duration
}

// String describes the config with its secret redacted.
func (c Config) String() string {
	sec := "none"
	if len(c.Secret) > 0 {
		sec = redacted
	}
	return fmt.Sprintf("client.Config{BaseURL: %q, KeyID: %q, Secret: %s, Retries: %d, Backoff: %s, Timeout: %s}",
		redactURL(c.BaseURL), c.KeyID, sec, c.Retries, c.Backoff, c.Timeout)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// Format prints String for every verb, so %x or %+v cannot reach Secret.
func (c Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// MarshalJSON writes the config with its secret redacted.
func (c Config) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"base_url":%q,"key_id":%q,"secret":%q}`, redactURL(c.BaseURL), c.KeyID, redacted)), nil
}

// LogValue is what log/slog shows: no secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", redactURL(c.BaseURL)), slog.String("key_id", c.KeyID),
		slog.String("secret", redacted))
}

// redactURL hides a password written into a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Client calls the service. Safe for concurrent use.
type Client struct {
	base       *url.URL
	keyID      string
	key        *signingKey
	hc         *http.Client
	streamHC   *http.Client // hc without its Timeout, for Events
	clk        clock.Clock
	retries    int
	backoff    time.Duration
	timeout    time.Duration
	streamIdle time.Duration
}

// signingKey holds the secret behind a pointer, so that fmt, printing a
// Client by reflection, shows an address and not the bytes.
type signingKey struct{ secret []byte }

// String prints [REDACTED].
func (*signingKey) String() string { return redacted }

// New checks cfg and returns a client. It copies cfg.Secret.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.BaseURL)
	switch {
	case err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "":
		return nil, fmt.Errorf("%w: BaseURL %q: want http(s)://host[:port]", ErrConfig, redactURL(cfg.BaseURL))
	case base.RawQuery != "" || base.Fragment != "":
		return nil, fmt.Errorf("%w: BaseURL %q: no query or fragment", ErrConfig, redactURL(cfg.BaseURL))
	case cfg.KeyID == "":
		return nil, fmt.Errorf("%w: KeyID is empty", ErrConfig)
	case len(cfg.Secret) == 0:
		return nil, fmt.Errorf("%w: Secret is empty", ErrConfig)
	case cfg.Backoff < 0 || cfg.Timeout < 0 || cfg.StreamIdle < 0:
		return nil, fmt.Errorf("%w: Backoff, Timeout and StreamIdle must be >= 0", ErrConfig)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = ""
	c := &Client{
		base: base, keyID: cfg.KeyID, key: &signingKey{secret: append([]byte(nil), cfg.Secret...)},
		clk: cfg.Clock, retries: cfg.Retries, backoff: cfg.Backoff,
		timeout: cfg.Timeout, streamIdle: cfg.StreamIdle,
	}
	// A redirect would carry the signed headers to another URL, whose path
	// they do not sign: take a 3xx as the answer.
	hc := http.Client{}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	shc := hc
	shc.Timeout = 0
	c.streamHC = &shc
	if c.clk == nil {
		c.clk = clock.Wall{}
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.backoff == 0 {
		c.backoff = DefaultBackoff
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.streamIdle == 0 {
		c.streamIdle = DefaultStreamIdle
	}
	return c, nil
}

// String names the service and key, never the secret.
func (c *Client) String() string {
	return fmt.Sprintf("client.Client{BaseURL: %q, KeyID: %q}", c.base.Redacted(), c.keyID)
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }
