package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
)

// Submit sends a parent order. created is true when this call's answer
// made it (201) and false when the service already had the order of this
// client_order_id and body (200): after a lost answer, that may be an
// earlier attempt of this very call (SubmitDetail tells). Another body
// under the same id is a 409 *api.Error.
func (c *Client) Submit(ctx context.Context, req api.OrderRequest) (api.Order, bool, error) {
	s, err := c.SubmitDetail(ctx, req)
	return s.Order, s.Created, err
}

// Submitted is how a submit ended.
type Submitted struct {
	Order api.Order
	// Created is true when the last attempt's answer made the order (201).
	Created bool
	// Attempts is how many requests the call made.
	Attempts int
	// EarlierAttempt is true when an attempt before the last may have
	// reached the service and been acted on (it got no answer, or a 5xx).
	// With Created false, the order may be that attempt's; with both
	// false, the service had the order before this call.
	EarlierAttempt bool
}

// SubmitDetail is Submit, telling also whether the order could be this
// call's own earlier attempt's.
func (c *Client) SubmitDetail(ctx context.Context, req api.OrderRequest) (Submitted, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Submitted{}, fmt.Errorf("client: encode the order: %w", err)
	}
	var o api.Order
	ans, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/orders", body: body, policy: replayable}, &o)
	if err != nil {
		return Submitted{}, err
	}
	return Submitted{Order: o, Created: ans.status == http.StatusCreated, Attempts: ans.attempts, EarlierAttempt: ans.unsure}, nil
}

// Get returns an order.
func (c *Client) Get(ctx context.Context, id string) (api.Order, error) {
	p, err := orderPath(id, "")
	if err != nil {
		return api.Order{}, err
	}
	var o api.Order
	_, err = c.do(ctx, call{method: http.MethodGet, path: p, policy: replayable}, &o)
	return o, err
}

// List returns the orders the key may see, in one state (accepted,
// working, paused, done, cancelled, failed) or, with "", all.
func (c *Client) List(ctx context.Context, state string) ([]api.Order, error) {
	r := call{method: http.MethodGet, path: "/v1/orders", policy: replayable}
	if state != "" {
		r.query = url.Values{"state": {state}}
	}
	var l api.OrderList
	if _, err := c.do(ctx, r, &l); err != nil {
		return nil, err
	}
	return l.Orders, nil
}

// Pause stops an order placing children until Resume. Pausing a paused
// order changes nothing.
func (c *Client) Pause(ctx context.Context, id string) (api.Order, error) {
	o, _, err := c.act(ctx, id, "pause")
	return o, err
}

// Resume lets a paused order work again. Resuming one that is not paused
// changes nothing.
func (c *Client) Resume(ctx context.Context, id string) (api.Order, error) {
	o, _, err := c.act(ctx, id, "resume")
	return o, err
}

// Cancel ends an order: nothing more is placed, what filled stays. If an
// attempt may have cancelled it and a retry is told the order has ended,
// Cancel looks the order up: cancelled is success.
func (c *Client) Cancel(ctx context.Context, id string) (api.Order, error) {
	o, unsure, err := c.act(ctx, id, "cancel")
	var ae *api.Error
	if err != nil && unsure && errors.As(err, &ae) && ae.Status == http.StatusConflict {
		if got, gerr := c.Get(ctx, id); gerr == nil && got.State == "cancelled" {
			return got, nil
		}
	}
	return o, err
}

// act posts one of an order's actions (pause, resume, cancel).
func (c *Client) act(ctx context.Context, id, action string) (api.Order, bool, error) {
	p, err := orderPath(id, action)
	if err != nil {
		return api.Order{}, false, err
	}
	var o api.Order
	ans, err := c.do(ctx, call{method: http.MethodPost, path: p, policy: replayable}, &o)
	return o, ans.unsure, err
}

// Amend changes a working order's terms; the fields left nil stay. The
// terms are absolute values, so a retried Amend sets what the first
// attempt set.
func (c *Client) Amend(ctx context.Context, id string, a api.Amendment) (api.Order, error) {
	p, err := orderPath(id, "")
	if err != nil {
		return api.Order{}, err
	}
	body, err := json.Marshal(a)
	if err != nil {
		return api.Order{}, fmt.Errorf("client: encode the amendment: %w", err)
	}
	var o api.Order
	_, err = c.do(ctx, call{method: http.MethodPatch, path: p, body: body, policy: replayable}, &o)
	return o, err
}

// Fills returns every fill of an order that the ledger holds.
func (c *Client) Fills(ctx context.Context, id string) ([]bus.FillMsg, error) {
	p, err := orderPath(id, "fills")
	if err != nil {
		return nil, err
	}
	var l api.FillList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: p, policy: replayable}, &l); err != nil {
		return nil, err
	}
	return l.Fills, nil
}

// Kill cancels every order of every client (a key with scope admin). It
// is retried only when the server cannot have acted (see the package
// documentation): an error after the request went out leaves it unknown
// whether the kill ran; List tells.
func (c *Client) Kill(ctx context.Context, reason string) (api.KillResult, error) {
	body, err := json.Marshal(api.KillRequest{Reason: reason})
	if err != nil {
		return api.KillResult{}, fmt.Errorf("client: encode the kill: %w", err)
	}
	var k api.KillResult
	_, err = c.do(ctx, call{method: http.MethodPost, path: "/v1/kill", body: body, policy: once}, &k)
	return k, err
}

// ReleaseKill releases the kill switch (a key with scope admin): orders
// may be submitted again. It is idempotent, so it is retried.
func (c *Client) ReleaseKill(ctx context.Context) (api.KillState, error) {
	var k api.KillState
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/kill", policy: replayable}, &k)
	return k, err
}

// Health returns the service's health. A degraded service answering 503
// with its checks is not an error: the Health says what is wrong.
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var h api.Health
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/healthz", policy: replayable, accept: isHealth}, &h)
	return h, err
}

// isHealth tells a 503 that reports the checks from one that refuses.
func isHealth(status int, body []byte) bool {
	var h api.Health
	return status == http.StatusServiceUnavailable && json.Unmarshal(body, &h) == nil && h.Status != ""
}

// orderPath is /v1/orders/{id}[/suffix], the id escaped as one segment.
func orderPath(id, suffix string) (string, error) {
	if id == "" {
		return "", ErrNoID
	}
	p := "/v1/orders/" + url.PathEscape(id)
	if suffix != "" {
		p += "/" + suffix
	}
	return p, nil
}
