package coinbase

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/blockexec/blockexec/venues"
)

// Transport limits.
const (
	maxBody           = 8 << 20
	defaultRetryAfter = time.Minute
)

// apiError is an answer Coinbase gave with a 4xx status other than 401,
// 403 and 429: the request was understood and refused.
type apiError struct {
	Status int
	Code   string // Coinbase's "error", e.g. NOT_FOUND, INVALID_ARGUMENT
	Msg    string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// get sends a signed GET and decodes the JSON answer into out.
func (v *Venue) get(ctx context.Context, path string, q url.Values, out any) error {
	return v.send(ctx, http.MethodGet, path, q, nil, out, true)
}

// post sends a signed POST of body as JSON and decodes the answer into out.
func (v *Venue) post(ctx context.Context, path string, body, out any) error {
	return v.send(ctx, http.MethodPost, path, nil, body, out, true)
}

// send is the one way out to Coinbase. Its errors:
//   - 401/403: a *venues.RejectError with code AUTH that names no credential;
//   - 429: venues.ErrUnavailable, and every request waits (fails at once)
//     until Retry-After has passed on the market clock;
//   - no answer, a 5xx, a body that is not the JSON we expect:
//     venues.ErrUnavailable (state unknown);
//   - another 4xx: an *apiError.
func (v *Venue) send(ctx context.Context, method, path string, q url.Values, body, out any, signed bool) error {
	if until, ok := v.pausedUntil(); ok {
		return fmt.Errorf("coinbase %s %s: rate limited until %s: %w", method, path,
			until.Format(time.RFC3339), venues.ErrUnavailable)
	}
	u := *v.base
	u.Path = v.base.Path + path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("coinbase %s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("coinbase %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if signed {
		tok, err := v.sign.token(method, u.Host, u.Path)
		if err != nil {
			return fmt.Errorf("coinbase %s %s: %w", method, path, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	start := v.auth.Now()
	res, err := v.http.Do(req)
	if err != nil {
		v.log.Debug().Str("method", method).Str("path", path).Err(err).Msg("coinbase request failed")
		return fmt.Errorf("coinbase %s %s: %w: %w", method, path, venues.ErrUnavailable, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	took := v.auth.Now().Sub(start)
	v.log.Debug().Str("method", method).Str("path", path).Int("status", res.StatusCode).Dur("took", took).
		Msg("coinbase request")
	if err != nil {
		return fmt.Errorf("coinbase %s %s: %d answer cut short: %w: %w", method, path, res.StatusCode,
			venues.ErrUnavailable, err)
	}
	switch s := res.StatusCode; {
	case s >= 200 && s < 300:
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("coinbase %s %s: unreadable answer (%d bytes): %v: %w", method, path, len(raw), err,
				venues.ErrUnavailable)
		}
		return nil
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return fmt.Errorf("coinbase %s %s: %w", method, path, &venues.RejectError{Venue: v.name, Code: "AUTH",
			Reason: fmt.Sprintf("HTTP %d: Coinbase refused the API key: check the key name and private key, the key's "+
				"permissions and IP allowlist, and that this host's clock is right (a JWT lives 2 minutes)", s)})
	case s == http.StatusTooManyRequests:
		d := retryAfter(res.Header.Get("Retry-After"), v.auth.Now())
		until := v.pause(d)
		v.log.Warn().Str("method", method).Str("path", path).Dur("retry_after", d).Time("until", until).
			Msg("coinbase rate limited the key (429); no requests until retry-after")
		return fmt.Errorf("coinbase %s %s: rate limited (429) for %s: %w", method, path, d, venues.ErrUnavailable)
	case s >= 500:
		return fmt.Errorf("coinbase %s %s: %s: %w", method, path, &apiError{Status: s, Code: decodeError(raw).Error},
			venues.ErrUnavailable)
	default:
		e := decodeError(raw)
		msg := e.Message
		if msg == "" {
			msg = e.ErrorDetails
		}
		return fmt.Errorf("coinbase %s %s: %w", method, path, &apiError{Status: s, Code: e.Error, Msg: msg})
	}
}

// decodeError reads Coinbase's error body; anything else (the gateway's
// HTML, plain text) leaves it empty.
func decodeError(raw []byte) errorJSON {
	var e errorJSON
	if json.Unmarshal(raw, &e) != nil {
		return errorJSON{}
	}
	return e
}

// retryAfter reads a Retry-After header (seconds or an HTTP date, against
// the wall clock now). Coinbase does not document one; absent, a minute.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return defaultRetryAfter
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return max(time.Duration(s)*time.Second, time.Second)
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), time.Second)
	}
	return defaultRetryAfter
}

// pause stops requests for d on the market clock and returns until when.
func (v *Venue) pause(d time.Duration) time.Time {
	until := v.clk.Now().Add(d)
	v.mu.Lock()
	defer v.mu.Unlock()
	if until.After(v.until) {
		v.until = until
	}
	return v.until
}

// pausedUntil reports whether a rate limit still holds on the market clock.
func (v *Venue) pausedUntil() (time.Time, bool) {
	now := v.clk.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.until, now.Before(v.until)
}
