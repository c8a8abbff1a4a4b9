package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
)

// The NATS API: the HTTP API's operations as a NATS micro service named
// "blockexec", one endpoint a subject under blockexec.api. Every request is
// one JSON object, signed as an HTTP request is (api.Canonical with method
// NATS, the request's subject as the path and an empty query) in the
// headers BX-Key, BX-Timestamp, BX-Nonce and BX-Signature.
//
//	subject                        scope  request body                               reply
//	blockexec.api.orders.submit    trade  api.OrderRequest                           api.Order, header BX-Created: true|false
//	blockexec.api.orders.list      read   NATSListRequest {"state": ""} (or empty)   api.OrderList
//	blockexec.api.orders.get       read   NATSOrderRef {"id": "…"}                   api.Order
//	blockexec.api.orders.fills     read   NATSOrderRef                               api.FillList
//	blockexec.api.orders.pause     trade  NATSOrderRef                               api.Order
//	blockexec.api.orders.resume    trade  NATSOrderRef                               api.Order
//	blockexec.api.orders.cancel    trade  NATSOrderRef                               api.Order
//	blockexec.api.orders.amend     trade  NATSAmendRequest {"id", "amendment"}       api.Order
//	blockexec.api.kill             admin  api.KillRequest                            api.KillResult
//	blockexec.api.kill.release     admin  empty                                      api.KillState
//
// The admin scope implies the others. A refusal is a micro error: the
// Nats-Service-Error-Code header is the HTTP status ("400", "401", "403",
// "404", "409", "413", "429", "500", "503"), Nats-Service-Error the
// error's code (not its message, which $SRV.STATS would show to anyone on
// the account), and the body the api.ErrorBody the HTTP API would send,
// message and field included; a 429 carries Retry-After (seconds).
//
// There is no events endpoint: NATS clients follow an order's events
// directly on the JetStream stream BLOCKEXEC_EVENTS, subjects
// blockexec.events.<order id>.<kind> (schema blockexec.event.v1), with
// whatever consumer suits them.
//
// Requests are answered concurrently (up to 64 at once over all
// endpoints). The micro framework takes its statistics as its handler
// returns, before the answer: $SRV.STATS counts requests, but not errors
// or the time spent; the Prometheus metrics (NATSConfig.Metrics) do, as
// route "NATS <subject>". Endpoints are in the
// queue group "q": several subscribers share the requests, so exactly one engine answers each, but the orders
// of one engine are invisible to another: run one blockexec service per
// NATS account.
const (
	NATSSubjectPrefix = "blockexec.api"
	NATSSubmit        = NATSSubjectPrefix + ".orders.submit"
	NATSList          = NATSSubjectPrefix + ".orders.list"
	NATSGet           = NATSSubjectPrefix + ".orders.get"
	NATSFills         = NATSSubjectPrefix + ".orders.fills"
	NATSPause         = NATSSubjectPrefix + ".orders.pause"
	NATSResume        = NATSSubjectPrefix + ".orders.resume"
	NATSCancel        = NATSSubjectPrefix + ".orders.cancel"
	NATSAmend         = NATSSubjectPrefix + ".orders.amend"
	NATSKill          = NATSSubjectPrefix + ".kill"
	NATSKillRelease   = NATSSubjectPrefix + ".kill.release"

	// NATSServiceName is the micro service's name, for $SRV.PING.blockexec,
	// $SRV.INFO.blockexec and $SRV.STATS.blockexec.
	NATSServiceName = "blockexec"
	// NATSMethod is the method of a NATS request's canonical string.
	NATSMethod = "NATS"
	// NATSHeaderCreated is on the reply to orders.submit: "true" if the
	// request made the order, "false" if it was made before (an idempotent
	// resubmit).
	NATSHeaderCreated = "BX-Created"
	// NATSHeaderRetryAfter is on a 429: the seconds to wait.
	NATSHeaderRetryAfter = "Retry-After"
)

// natsRequestTimeout bounds the work of one request, so a stuck engine
// call cannot hold its endpoint for ever.
const natsRequestTimeout = 15 * time.Second

// NATSListRequest is the body of orders.list. An empty State (or an empty
// body) lists orders in every state.
type NATSListRequest struct {
	State string `json:"state"`
}

// NATSOrderRef is the body of orders.get, fills, pause, resume and cancel.
type NATSOrderRef struct {
	ID string `json:"id"`
}

// NATSAmendRequest is the body of orders.amend. A refused amendment names
// its field as a path in this body ("amendment.floor_price").
type NATSAmendRequest struct {
	ID        string        `json:"id"`
	Amendment api.Amendment `json:"amendment"`
}

// NATSConfig configures the NATS API.
type NATSConfig struct {
	MaxBody int            // the largest request body; 0: DefaultMaxBody
	Log     zerolog.Logger // never given a header value, a body or a signature
	// Version is the service's version in $SRV.INFO: semantic ("1.4.0",
	// "v1.4.0"); anything else is shown as 0.0.0 with the text in the
	// metadata's "build".
	Version string
	// Metrics, if set, counts every request and its time (route
	// "NATS <subject>").
	Metrics *Metrics
}

// StartNATS serves the desk's operations on nc as the micro service
// "blockexec" (see NATSSubmit and the table above it). Stop the returned
// service before closing nc; in-flight requests finish within their
// timeout.
func StartNATS(nc *nats.Conn, d *Desk, keys *Keyring, cfg NATSConfig) (*NATSService, error) {
	if nc == nil || d == nil || keys == nil {
		return nil, errors.New("nats api: connection, desk and keys are required")
	}
	s := &natsAPI{desk: d, keys: keys, maxBody: cfg.MaxBody, log: cfg.Log.With().Str("api", "nats").Logger(),
		nc: nc, metrics: cfg.Metrics, slots: make(chan struct{}, natsConcurrency)}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	version, meta := natsVersion(cfg.Version)
	meta["events_stream"] = bus.EventsStream
	meta["events_subjects"] = bus.EventsSubject + ".<order id>.<kind>"
	meta["events_schema"] = bus.EventSchema
	meta["signing"] = "headers " + api.HeaderKey + ", " + api.HeaderTimestamp + " (Unix ms), " + api.HeaderNonce +
		" (16-64 chars), " + api.HeaderSignature + ": hex HMAC-SHA256 of NATS\\n<subject>\\n\\n<timestamp>\\n<nonce>\\n<hex SHA-256 of the body>"
	meta["errors"] = "micro errors: Nats-Service-Error-Code is the HTTP status, Nats-Service-Error the error code, " +
		"the body {\"error\": {\"code\", \"message\", \"field\"}}; a 429 has Retry-After (seconds)"
	meta["max_body"] = strconv.Itoa(s.maxBody)
	svc, err := micro.AddService(nc, micro.Config{
		Name:    NATSServiceName,
		Version: version,
		Description: "blockexec algorithmic execution: submit and manage parent orders with signed requests. " +
			"Order events are not served here: follow them on the JetStream stream " + bus.EventsStream +
			", subjects " + bus.EventsSubject + ".<order id>.<kind>.",
		Metadata: meta,
		ErrorHandler: func(_ micro.Service, e *micro.NATSError) {
			s.log.Warn().Str("subject", e.Subject).Str("error", e.Description).Msg("nats api subscription error")
		},
	})
	if err != nil {
		return nil, fmt.Errorf("nats api: %w", err)
	}
	g := svc.AddGroup(NATSSubjectPrefix)
	for _, ep := range s.endpoints() {
		// Answered off the subscription's goroutine: one slow submit (a
		// ledger lookup, an engine busy with a slice) does not hold up the
		// requests behind it.
		handle := func(req micro.Request) {
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				return
			}
			s.wg.Add(1)
			s.mu.Unlock()
			s.slots <- struct{}{}
			go func() {
				defer s.wg.Done()
				defer func() { <-s.slots }()
				start := s.metrics.now()
				status := http.StatusInternalServerError
				defer func() { s.metrics.request("NATS "+ep.subject, status, s.metrics.now().Sub(start)) }()
				defer s.recovered(ep, req, &status)
				status = s.serve(ep, req)
			}()
		}
		err := g.AddEndpoint(ep.name, micro.HandlerFunc(handle),
			micro.WithEndpointSubject(strings.TrimPrefix(ep.subject, NATSSubjectPrefix+".")),
			micro.WithEndpointMetadata(map[string]string{"scope": ep.scope, "request": ep.request, "response": ep.response}))
		if err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("nats api: endpoint %s: %w", ep.subject, err)
		}
	}
	// Return once the server has the subscriptions: a request sent next
	// finds its responder.
	if err := nc.Flush(); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("nats api: subscribe: %w", err)
	}
	return &NATSService{Service: svc, api: s}, nil
}

// NATSService is the running NATS API: the micro service, whose Stop also
// waits for the requests being answered.
type NATSService struct {
	micro.Service
	api *natsAPI
}

// Stop stops taking requests and waits for those being answered, so
// nothing answers on a connection, or asks an engine, being closed.
func (n *NATSService) Stop() error {
	err := n.Service.Stop()
	n.api.mu.Lock()
	n.api.stopped = true
	n.api.mu.Unlock()
	n.api.wg.Wait()
	return err
}

// natsAPI answers the NATS API's requests.
type natsAPI struct {
	desk    *Desk
	keys    *Keyring
	maxBody int
	log     zerolog.Logger
	nc      *nats.Conn
	metrics *Metrics
	// wg has every request being answered: Stop waits for them. A
	// request delivered after Stop (micro's drain is asynchronous) is
	// not answered.
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
	// slots bounds the requests being answered at once, over every
	// endpoint; a handler waits for a slot, so a flood queues in the
	// subscription instead of starting goroutines without end.
	slots chan struct{}
}

// natsConcurrency is how many NATS API requests are answered at once.
const natsConcurrency = 64

// natsEndpoint is one operation: its subject, the scope it needs, and what
// it does with an authenticated caller and the body.
type natsEndpoint struct {
	name, subject, scope string
	request, response    string // type names, for $SRV.INFO
	do                   func(ctx context.Context, c Caller, body []byte) (any, micro.Headers, *api.Error)
}

func (s *natsAPI) endpoints() []natsEndpoint {
	d, maxBody := s.desk, s.maxBody
	ref := func(name, subject, scope string, fn func(ctx context.Context, c Caller, id string) (any, *api.Error)) natsEndpoint {
		return natsEndpoint{name: name, subject: subject, scope: scope, request: "NATSOrderRef", response: "api.Order",
			do: func(ctx context.Context, c Caller, body []byte) (any, micro.Headers, *api.Error) {
				var r NATSOrderRef
				if aerr := natsDecode(body, maxBody, &r, false); aerr != nil {
					return nil, nil, aerr
				}
				if r.ID == "" {
					return nil, nil, api.BadField("id", "missing: the order's id (its client_order_id)")
				}
				v, aerr := fn(ctx, c, r.ID)
				return v, nil, aerr
			}}
	}
	act := func(fn func(context.Context, Caller, string) (api.Order, *api.Error)) func(context.Context, Caller, string) (any, *api.Error) {
		return func(ctx context.Context, c Caller, id string) (any, *api.Error) { return fn(ctx, c, id) }
	}
	fills := ref("orders_fills", NATSFills, ScopeRead, func(ctx context.Context, c Caller, id string) (any, *api.Error) {
		return d.FillsOf(ctx, c, id)
	})
	fills.response = "api.FillList"
	return []natsEndpoint{
		{name: "orders_submit", subject: NATSSubmit, scope: ScopeTrade, request: "api.OrderRequest", response: "api.Order",
			do: func(ctx context.Context, c Caller, body []byte) (any, micro.Headers, *api.Error) {
				var r api.OrderRequest
				if aerr := natsDecode(body, maxBody, &r, false); aerr != nil {
					return nil, nil, aerr
				}
				o, created, aerr := d.Submit(ctx, c, r)
				return o, micro.Headers{NATSHeaderCreated: {strconv.FormatBool(created)}}, aerr
			}},
		{name: "orders_list", subject: NATSList, scope: ScopeRead, request: "NATSListRequest", response: "api.OrderList",
			do: func(_ context.Context, c Caller, body []byte) (any, micro.Headers, *api.Error) {
				var r NATSListRequest
				if aerr := natsDecode(body, maxBody, &r, true); aerr != nil {
					return nil, nil, aerr
				}
				l, aerr := d.List(c, r.State)
				return l, nil, aerr
			}},
		ref("orders_get", NATSGet, ScopeRead, func(_ context.Context, c Caller, id string) (any, *api.Error) {
			return d.Get(c, id)
		}),
		fills,
		ref("orders_pause", NATSPause, ScopeTrade, act(d.Pause)),
		ref("orders_resume", NATSResume, ScopeTrade, act(d.Resume)),
		ref("orders_cancel", NATSCancel, ScopeTrade, act(d.Cancel)),
		{name: "orders_amend", subject: NATSAmend, scope: ScopeTrade, request: "NATSAmendRequest", response: "api.Order",
			do: func(ctx context.Context, c Caller, body []byte) (any, micro.Headers, *api.Error) {
				var r NATSAmendRequest
				if aerr := natsDecode(body, maxBody, &r, false); aerr != nil {
					return nil, nil, aerr
				}
				if r.ID == "" {
					return nil, nil, api.BadField("id", "missing: the order's id (its client_order_id)")
				}
				o, aerr := d.Amend(ctx, c, r.ID, r.Amendment)
				if aerr != nil && aerr.Status == http.StatusBadRequest {
					// The desk names the amendment's own fields; here they
					// sit under "amendment".
					aerr.Field = strings.TrimSuffix("amendment."+aerr.Field, ".")
				}
				return o, nil, aerr
			}},
		{name: "kill", subject: NATSKill, scope: ScopeAdmin, request: "api.KillRequest", response: "api.KillResult",
			do: func(ctx context.Context, c Caller, body []byte) (any, micro.Headers, *api.Error) {
				var r api.KillRequest
				if aerr := natsDecode(body, maxBody, &r, false); aerr != nil {
					return nil, nil, aerr
				}
				k, aerr := d.Kill(ctx, c, r.Reason)
				return k, nil, aerr
			}},
		{name: "kill_release", subject: NATSKillRelease, scope: ScopeAdmin, request: "empty", response: "api.KillState",
			do: func(ctx context.Context, c Caller, body []byte) (any, micro.Headers, *api.Error) {
				var none struct{}
				if aerr := decodeOptional(body, maxBody, &none); aerr != nil {
					return nil, nil, aerr
				}
				k, aerr := d.ReleaseKill(ctx, c)
				return k, nil, aerr
			}},
	}
}

// serve answers one request: size, signature, scope, then the operation.
func (s *natsAPI) serve(ep natsEndpoint, req micro.Request) int {
	body := req.Data()
	if len(body) > s.maxBody {
		return s.fail(req, ep, "", api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge,
			"the body has %d bytes; at most %d", len(body), s.maxBody), 0)
	}
	h := req.Headers()
	key, aerr, wait := s.keys.Authenticate(Signed{
		KeyID: natsHeader(h, api.HeaderKey), Timestamp: natsHeader(h, api.HeaderTimestamp),
		Nonce: natsHeader(h, api.HeaderNonce), Signature: natsHeader(h, api.HeaderSignature),
		Method: NATSMethod, Path: req.Subject(), Body: body,
	})
	if aerr != nil {
		return s.fail(req, ep, "", aerr, wait)
	}
	if !key.Allows(ep.scope) {
		return s.fail(req, ep, key.Client, api.Errorf(http.StatusForbidden, api.CodeForbidden,
			"key %s lacks the %s scope that %s needs", key.ID, ep.scope, ep.subject), 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), natsRequestTimeout)
	defer cancel()
	v, hdr, aerr := ep.do(ctx, key.Caller(), body)
	if aerr != nil {
		return s.fail(req, ep, key.Client, aerr, 0)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return s.fail(req, ep, key.Client, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "encode the reply: %v", err), 0)
	}
	if err := s.reply(req, data, nats.Header(hdr)); err != nil {
		s.log.Warn().Str("endpoint", ep.name).Str("client", key.Client).Err(err).Msg("nats api reply not sent")
		return http.StatusOK
	}
	s.log.Debug().Str("endpoint", ep.name).Str("client", key.Client).Msg("nats api request")
	return http.StatusOK
}

// recovered answers a request whose handling panicked with a 500 and a
// reference to the log line; the service goes on. As on HTTP, only a
// runtime error's text is logged.
func (s *natsAPI) recovered(ep natsEndpoint, req micro.Request, status *int) {
	p := recover()
	if p == nil {
		return
	}
	ref := logPanic(s.log, "subject", ep.subject, p)
	*status = s.fail(req, ep, "", internal(ref), 0)
}

// fail answers a refusal as a micro error whose code is the HTTP status.
// Only 5xx messages are logged: the others may quote the request.
func (s *natsAPI) fail(req micro.Request, ep natsEndpoint, client string, aerr *api.Error, wait time.Duration) int {
	status := aerr.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	body, err := json.Marshal(api.ErrorBody{Error: aerr})
	if err != nil {
		body = nil
	}
	code := strconv.Itoa(status)
	hdr := nats.Header{micro.ErrorCodeHeader: {code}, micro.ErrorHeader: {natsDescription(aerr)}}
	if status == http.StatusTooManyRequests {
		hdr.Set(NATSHeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	}
	ev := s.log.Debug()
	if status >= 500 {
		ev = s.log.Error().Str("error", aerr.Message)
	}
	ev.Str("endpoint", ep.name).Str("client", client).Int("status", status).Str("code", aerr.Code).Msg("nats api refused")
	if err := s.reply(req, body, hdr); err != nil {
		s.log.Warn().Str("endpoint", ep.name).Err(err).Msg("nats api error reply not sent")
	}
	return status
}

// reply answers a request on its connection, as micro's Respond and Error
// do (same headers), but without touching the micro request: the framework
// reads it as soon as its handler returns, which is before the answer.
func (s *natsAPI) reply(req micro.Request, data []byte, hdr nats.Header) error {
	if req.Reply() == "" {
		return errors.New("the request has no reply subject")
	}
	return s.nc.PublishMsg(&nats.Msg{Subject: req.Reply(), Data: data, Header: hdr})
}

// natsDescription is an error's text for the Nats-Service-Error header:
// its code only. micro keeps the last one in $SRV.STATS, which anyone on
// the account may read, and a message may quote a request (an id, a key
// id, a field's value); the message travels in the body, to the caller
// alone.
func natsDescription(aerr *api.Error) string {
	if aerr.Code == "" {
		return api.CodeInternal
	}
	return aerr.Code
}

// natsDecode decodes a body strictly (Decode); emptyOK lets an empty body
// stand for {}.
func natsDecode(body []byte, maxBody int, v any, emptyOK bool) *api.Error {
	if emptyOK {
		return decodeOptional(body, maxBody, v)
	}
	return Decode(body, maxBody, v)
}

// natsHeader reads a header by its exact name, else ignoring case: NATS
// headers are case-sensitive, and clients other than ours may not send
// the canonical spelling.
func natsHeader(h micro.Headers, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// natsSemVer is micro's check of a service version (semver.org's expression).
var natsSemVer = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// natsVersion makes a build's version one micro accepts: a development
// build ("dev", a commit) must not stop the API from starting.
func natsVersion(v string) (string, map[string]string) {
	meta := map[string]string{}
	if sv := strings.TrimPrefix(v, "v"); natsSemVer.MatchString(sv) {
		return sv, meta
	}
	if v != "" {
		meta["build"] = v
	}
	return "0.0.0", meta
}
