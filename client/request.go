package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/blockexec/blockexec/api"
)

// policy says which failures of a call may be retried.
type policy int

const (
	// replayable calls do nothing more the second time: GETs, a submit
	// (same client_order_id and body), pause, resume, cancel, amend.
	replayable policy = iota + 1
	// once calls may act twice (kill): retried only when the server cannot
	// have acted.
	once
)

// maxAnswer bounds an answer's body (a list of a thousand orders is about
// a megabyte).
const maxAnswer = 64 << 20

// call is one API call, as every attempt sends it.
type call struct {
	method string
	path   string // under the base URL, e.g. /v1/orders
	query  url.Values
	body   []byte // nil: none
	policy policy
	// accept tells a non-2xx answer that is an answer, decoded into out
	// (the health check's 503 with its checks); nil: none is.
	accept func(status int, body []byte) bool
}

// answer is what the call ended with.
type answer struct {
	status int
	// unsure is true when an attempt before the last may have been acted
	// on: it was written in full and got no answer, or a 5xx.
	unsure bool
	// attempts is how many attempts were made.
	attempts int
}

// attempt is one try's outcome.
type attempt struct {
	status int
	header http.Header
	body   []byte
	err    error // transport: nothing, or not all, of the answer came
	sent   bool  // the request was written in full
	// replayed is true when net/http wrote the request twice: it resends
	// a GET by itself when a reused connection fails after the write, and
	// the server refuses the second, with the same nonce, as a replay.
	replayed bool
}

// do runs a call with its retries and decodes a 2xx answer into out (if
// not nil). A refusal by the server is returned as an *api.Error, wrapped
// with the method and path.
func (c *Client) do(ctx context.Context, r call, out any) (answer, error) {
	var ans answer
	for n := 0; ; n++ {
		at := c.try(ctx, r)
		ans.status, ans.attempts = at.status, n+1
		if at.err == nil && (at.status/100 == 2 || r.accept != nil && r.accept(at.status, at.body)) {
			if out != nil && len(at.body) > 0 {
				if err := json.Unmarshal(at.body, out); err != nil {
					return ans, fmt.Errorf("%s %s: answered %d with a body that is not the API's: %w", r.method, r.path, at.status, err)
				}
			}
			return ans, nil
		}
		err := at.err
		if err == nil {
			err = apiError(at.status, at.body)
		}
		if ctx.Err() != nil {
			return ans, c.fail(r, n, err, ctx.Err())
		}
		retry, wait := c.retryable(r.policy, at, n)
		if !retry || n >= c.retries {
			return ans, c.fail(r, n, err, nil)
		}
		if at.sent && (at.err != nil || at.status >= 500 || at.replayed) {
			ans.unsure = true
		}
		if werr := c.clk.WaitUntil(ctx, c.clk.Now().Add(wait)); werr != nil {
			return ans, c.fail(r, n, err, werr)
		}
	}
}

// fail wraps a call's last error once: the call, how many attempts, and
// why it stopped early if ctx ended.
func (c *Client) fail(r call, n int, err, stop error) error {
	var ae *api.Error
	prefix := r.method + " " + r.path
	if n > 0 {
		prefix += fmt.Sprintf(" (%d attempts)", n+1)
	}
	switch {
	case stop != nil && errors.Is(err, stop):
		return fmt.Errorf("%s: %w", prefix, err)
	case stop != nil:
		return fmt.Errorf("%s: %w (last: %w)", prefix, stop, err)
	case errors.As(err, &ae):
		return fmt.Errorf("%s: %w", prefix, err)
	}
	// A transport error (*url.Error) already names the method and URL.
	if n > 0 {
		return fmt.Errorf("after %d attempts: %w", n+1, err)
	}
	return err
}

// retryable says whether an attempt may be retried under p, and after how
// long (n is the attempt's index, from 0).
func (c *Client) retryable(p policy, at attempt, n int) (bool, time.Duration) {
	wait := min(c.backoff<<min(n, 16), maxBackoff)
	switch {
	case at.err != nil && !at.sent:
		return true, wait // the server has not seen it all: nothing happened
	case at.err != nil:
		return p == replayable, wait
	case at.status == http.StatusUnauthorized && at.replayed:
		return p == replayable, wait // our own nonce, seen on the first write
	case at.status == http.StatusTooManyRequests:
		if d, ok := retryAfter(at.header, c.clk.Now()); ok {
			wait = d
		}
		return true, wait // refused by the rate limit, before anything is done
	case at.status >= 500:
		return p == replayable, wait
	}
	return false, 0
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// try makes one attempt: sign, send and read the whole answer, within
// the per-attempt timeout.
func (c *Client) try(ctx context.Context, r call) attempt {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var sent atomic.Bool
	var writes atomic.Int32
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			sent.Store(info.Err == nil)
			if info.Err == nil {
				writes.Add(1)
			}
		},
	})
	req, err := c.request(actx, r, "application/json")
	if err != nil {
		return attempt{err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return attempt{err: err, sent: sent.Load()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	at := attempt{status: resp.StatusCode, header: resp.Header, body: body, sent: true, replayed: writes.Load() > 1}
	switch {
	case err != nil:
		at.err = fmt.Errorf("%s %s: answered %d, then the body was cut: %w", r.method, r.path, resp.StatusCode, err)
	case len(body) > maxAnswer:
		at.err = fmt.Errorf("%s %s: the answer is over %d bytes", r.method, r.path, maxAnswer)
	}
	return at
}

// request builds one attempt's signed request.
func (c *Client) request(ctx context.Context, r call, accept string) (*http.Request, error) {
	// r.path is escaped (an order id is one path segment, '/' as %2F).
	u := *c.base
	u.RawPath = c.base.EscapedPath() + r.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	u.Path = p
	u.RawQuery = ""
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	ts := c.clk.Now().UnixMilli()
	// Sign the path as the server reads it (decoded: r.URL.Path) and the
	// query as sent (r.URL.RawQuery).
	canonical := api.Canonical(r.method, req.URL.Path, req.URL.RawQuery, ts, nonce, r.body)
	req.Header.Set(api.HeaderKey, c.keyID)
	req.Header.Set(api.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(api.HeaderNonce, nonce)
	req.Header.Set(api.HeaderSignature, api.Sign(c.key.secret, canonical))
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "blockexec-client/1")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// newNonce returns 16 random bytes in hex.
func newNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("client: nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// apiError decodes an error answer. One that is not the API's (a proxy's
// page) becomes an *api.Error of its status, without its body.
func apiError(status int, body []byte) *api.Error {
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err == nil && eb.Error != nil && eb.Error.Code != "" {
		eb.Error.Status = status
		return eb.Error
	}
	return &api.Error{Status: status, Code: api.CodeOf(status),
		Message: fmt.Sprintf("HTTP %d %s (the answer is not an API error body)", status, http.StatusText(status))}
}
