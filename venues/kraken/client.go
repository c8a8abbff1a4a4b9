package kraken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/blockexec/blockexec/venues"
)

const (
	userAgent = "blockexec-kraken/1"
	maxAnswer = 16 << 20
	// defaultPause is how long the adapter stops sending after a rate
	// limit that says nothing of when to come back.
	defaultPause = time.Minute
	// lockoutPause is Kraken's stated length of a temporary lockout.
	lockoutPause = 15 * time.Minute
)

// request is one call of Kraken's API.
type request struct {
	method  string // Time, Depth, AddOrder, …
	private bool
	// write marks a call that changes state (AddOrder, CancelOrder): it is
	// never sent twice after a rate limit, as the engine decides what to do.
	write  bool
	params url.Values
}

// rateLimited is Kraken saying "too many": stop for after.
type rateLimited struct {
	msg   string
	after time.Duration
}

func (e *rateLimited) Error() string { return e.msg }

// errBadNonce is EAPI:Invalid nonce, retried once with a fresh nonce.
var errBadNonce = errors.New("EAPI:Invalid nonce")

// call sends rq and decodes its result into out (nil: ignore it). While
// the adapter is paused after a rate limit every call fails at once as
// unavailable; nothing is sent again after a rate limit (the engine waits,
// or routes to the other venues).
func (v *Venue) call(ctx context.Context, rq request, out any) error {
	nonceRetried := false
	for {
		if err := v.awaitPause(ctx, rq.method); err != nil {
			return err
		}
		raw, err := v.send(ctx, rq)
		var rl *rateLimited
		switch {
		case errors.As(err, &rl):
			until := v.pause(rl.after, rq.method, rl.msg)
			return fmt.Errorf("kraken %s: %s: %s; requests paused until %s: %w", v.cfg.Name, rq.method, rl.msg,
				until.Format(time.RFC3339), venues.ErrUnavailable)
		case errors.Is(err, errBadNonce):
			if !nonceRetried {
				nonceRetried = true
				v.log.Warn().Str("method", rq.method).Msg("Kraken refused the nonce; retrying once with a fresh one")
				continue
			}
			return &venues.RejectError{Venue: v.cfg.Name, Code: "AUTH", Reason: "EAPI:Invalid nonce twice in a row: " +
				"another client may be using this API key with larger nonces; give each process its own key"}
		case err != nil:
			return err
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("kraken %s: %s: unreadable result (%v); state unknown: %w", v.cfg.Name, rq.method, err,
				venues.ErrUnavailable)
		}
		return nil
	}
}

// awaitPause refuses a call while a rate-limit pause lasts, without
// waiting: the engine's other venues must not wait with this one, and the
// engine lets a venue that answers "unavailable" sit out.
func (v *Venue) awaitPause(_ context.Context, method string) error {
	v.mu.Lock()
	until := v.pauseEnd
	v.mu.Unlock()
	if v.clk.Now().Before(until) {
		return fmt.Errorf("kraken %s: %s: rate limited; requests paused until %s: %w", v.cfg.Name, method,
			until.Format(time.RFC3339), venues.ErrUnavailable)
	}
	return nil
}

// pause stops sending for d on the market clock and says so.
func (v *Venue) pause(d time.Duration, method, msg string) time.Time {
	if d <= 0 {
		d = defaultPause
	}
	until := v.clk.Now().Add(d)
	v.mu.Lock()
	if until.After(v.pauseEnd) {
		v.pauseEnd = until
	}
	until = v.pauseEnd
	v.mu.Unlock()
	v.log.Warn().Str("method", method).Str("kraken_error", msg).Dur("retry_after", d).Time("until", until).
		Msg("rate limited by Kraken; pausing requests")
	return until
}

// send makes one HTTP request and returns the result of Kraken's envelope.
func (v *Venue) send(ctx context.Context, rq request) (json.RawMessage, error) {
	kind := "public"
	if rq.private {
		kind = "private"
	}
	path := "/0/" + kind + "/" + rq.method
	u := *v.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	var req *http.Request
	var err error
	if rq.private {
		v.privMu.Lock()
		defer v.privMu.Unlock()
		nonce := strconv.FormatInt(v.nextNonce(), 10)
		form := url.Values{}
		for k, vs := range rq.params {
			form[k] = vs
		}
		form.Set("nonce", nonce)
		body := form.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("kraken %s: %s: %w", v.cfg.Name, rq.method, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("API-Key", v.cfg.APIKey.Reveal())
		req.Header.Set("API-Sign", sign(v.key, path, nonce, body))
	} else {
		u.RawQuery = rq.params.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("kraken %s: %s: %w", v.cfg.Name, rq.method, err)
		}
	}
	req.Header.Set("User-Agent", userAgent)
	res, err := v.hc.Do(req)
	if err != nil {
		v.log.Debug().Str("method", rq.method).Err(err).Msg("no answer")
		return nil, fmt.Errorf("kraken %s: %s: no answer (%v); state unknown: %w", v.cfg.Name, rq.method,
			transportCause(err), venues.ErrUnavailable)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("kraken %s: %s: answer cut off (%v); state unknown: %w", v.cfg.Name, rq.method,
			transportCause(err), venues.ErrUnavailable)
	}
	result, kerr := parseEnvelope(res.StatusCode, body)
	ev := v.log.Debug().Str("method", rq.method).Int("status", res.StatusCode)
	if kerr != nil {
		ev = ev.Str("kraken_error", kerr.Error())
	}
	ev.Msg("kraken answered")
	if kerr == nil {
		return result, nil
	}
	return nil, v.mapError(rq, res, kerr)
}

// transportCause keeps the reason of a transport error and drops the URL
// the client prefixes it with.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// nextNonce draws a nonce from the wall clock in microseconds, one more
// than the last if the clock has not moved. Caller holds privMu.
//
// Assumption: Kraken asks only that a key's nonces grow; microseconds stay
// above the milliseconds most clients use, so a key used before by such a
// client keeps working (one used with nanoseconds would not).
func (v *Venue) nextNonce() int64 {
	n := v.auth.Now().UnixMicro()
	if n <= v.lastNonce {
		n = v.lastNonce + 1
	}
	v.lastNonce = n
	return n
}

// sign is Kraken's API-Sign: base64(HMAC-SHA512(secret, path +
// SHA256(nonce + body))).
func sign(secret []byte, path, nonce, body string) string {
	sum := sha256.Sum256([]byte(nonce + body))
	mac := hmac.New(sha512.New, secret)
	mac.Write([]byte(path))
	mac.Write(sum[:])
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// envelope is every answer of Kraken's REST API.
type envelope struct {
	Error  []string        `json:"error"`
	Result json.RawMessage `json:"result"`
}

// krakenError is an answer that is not a result: Kraken's first error, or
// the HTTP status when the body says nothing.
type krakenError struct {
	status int
	msg    string // "EOrder:Post only order"; empty when the body had no error
	bad    bool   // the body could not be read as Kraken's envelope
}

func (e *krakenError) Error() string {
	switch {
	case e.msg != "":
		return e.msg
	case e.bad:
		return fmt.Sprintf("HTTP %d with an unreadable body", e.status)
	}
	return fmt.Sprintf("HTTP %d", e.status)
}

// parseEnvelope reads Kraken's {"error": […], "result": …}. Warnings
// (W…) are not errors. Any status but 200 is an error even with a result.
func parseEnvelope(status int, body []byte) (json.RawMessage, *krakenError) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &krakenError{status: status, bad: true}
	}
	for _, e := range env.Error {
		if strings.HasPrefix(e, "E") {
			return nil, &krakenError{status: status, msg: e}
		}
	}
	if status != http.StatusOK {
		return nil, &krakenError{status: status}
	}
	if len(env.Result) == 0 || string(env.Result) == "null" {
		return nil, &krakenError{status: status, bad: true}
	}
	return env.Result, nil
}

// mapError turns a Kraken error into the engine's.
func (v *Venue) mapError(rq request, res *http.Response, ke *krakenError) error {
	name := v.cfg.Name
	msg := ke.msg
	unavailable := func(why string) error {
		return fmt.Errorf("kraken %s: %s: %s; state unknown: %w", name, rq.method, why, venues.ErrUnavailable)
	}
	reject := func(code string) error {
		return &venues.RejectError{Venue: name, Code: code, Reason: msg}
	}
	switch {
	case ke.status == http.StatusTooManyRequests || isRateLimit(msg):
		after := retryAfter(res.Header.Get("Retry-After"), v.auth.Now())
		if after == 0 {
			after = v.throttledFor(msg)
		}
		if after == 0 && msg == "EGeneral:Temporary lockout" {
			after = lockoutPause
		}
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", ke.status)
		}
		return &rateLimited{msg: msg, after: after}
	case msg == "EAPI:Invalid nonce":
		return errBadNonce
	case ke.status >= 500:
		return unavailable(ke.Error())
	case msg == "":
		return unavailable(ke.Error())
	case msg == "EAPI:Invalid key", msg == "EAPI:Invalid signature", msg == "EGeneral:Permission denied",
		strings.HasPrefix(msg, "EAuth:"), strings.HasPrefix(msg, "EAccount:"):
		return &venues.RejectError{Venue: name, Code: "AUTH",
			Reason: msg + ": Kraken refused the API key or its signature; check the key pair and its permissions"}
	case strings.HasPrefix(msg, "EService:Market in"):
		return reject("MARKET_STATUS")
	case strings.HasPrefix(msg, "EService:"), strings.HasPrefix(msg, "EGeneral:Internal error"):
		return unavailable(msg)
	case msg == "EOrder:Post only order":
		return fmt.Errorf("%w: %w", reject("WOULD_TAKE"), venues.ErrWouldTake)
	case strings.Contains(msg, "cl_ord_id") && (strings.Contains(msg, "not unique") || strings.Contains(msg, "uplicate")):
		return fmt.Errorf("kraken %s: %s: %w", name, msg, venues.ErrDuplicateClientID)
	case msg == "EQuery:Unknown asset pair":
		return fmt.Errorf("kraken %s: %s: %w", name, msg, venues.ErrUnknownSymbol)
	case msg == "EOrder:Unknown order", msg == "EOrder:Invalid order":
		return fmt.Errorf("kraken %s: %s: %w", name, msg, venues.ErrUnknownOrder)
	}
	if code := orderRule(msg); code != "" {
		return reject(code)
	}
	if strings.HasPrefix(msg, "EGeneral:Invalid arguments") {
		return reject("INVALID_ARGUMENTS")
	}
	return reject("KRAKEN")
}

// orderRule names the rule one of Kraken's refusals of an order breaks, or
// "" when msg is not one.
func orderRule(msg string) string {
	switch msg {
	case "EOrder:Order minimum not met":
		return "MIN_QTY"
	case "EOrder:Cost minimum not met":
		return "MIN_NOTIONAL"
	case "EOrder:Tick size check failed":
		return "TICK"
	case "EOrder:Invalid price", "EGeneral:Invalid arguments:price":
		return "PRICE"
	case "EGeneral:Invalid arguments:volume":
		return "VOLUME"
	case "EOrder:Insufficient funds":
		return "FUNDS"
	case "EOrder:Orders limit exceeded":
		return "OPEN_ORDERS_LIMIT"
	case "EOrder:Positions limit exceeded":
		return "POSITIONS_LIMIT"
	}
	return ""
}

// isRateLimit reports whether msg is one of Kraken's "too many" answers.
func isRateLimit(msg string) bool {
	switch msg {
	case "EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded", "EOrder:Domain rate limit exceeded",
		"EGeneral:Too many requests", "EGeneral:Temporary lockout", "EAuth:Rate limit exceeded",
		"EAuth:Too many requests":
		return true
	}
	return strings.HasPrefix(msg, "EService:Throttled")
}

// throttledFor reads EService:Throttled:<unix seconds>, the instant Kraken
// takes requests again, as a wait from now on the wall clock.
func (v *Venue) throttledFor(msg string) time.Duration {
	ts, ok := strings.CutPrefix(msg, "EService:Throttled:")
	if !ok {
		return 0
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return 0
	}
	if d := time.Unix(sec, 0).Sub(v.auth.Now()); d > 0 {
		return d
	}
	return time.Second
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
