package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/blockexec/blockexec/api"
)

// natsDefaultWait is how long NATSRequest waits for a reply when ctx has
// no deadline.
const natsDefaultWait = 10 * time.Second

// NATSRequest calls the NATS API: it signs body for subject with the key
// (at now, with nonce; an empty nonce is drawn at random), sends it and
// decodes the reply into out (if not nil). A refusal by the service is
// returned as an *api.Error with its Status; not reaching the service
// (no responders, a timeout) is another error. body is marshalled as JSON,
// except a []byte or json.RawMessage, sent as is, and nil, sent empty.
// Without a deadline on ctx it waits at most 10 s.
func NATSRequest(ctx context.Context, nc *nats.Conn, subject string, keyID string, secret []byte, body any, out any,
	now time.Time, nonce string) error {
	var data []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		data = b
	case json.RawMessage:
		data = b
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			return fmt.Errorf("nats request %s: encode the body: %w", subject, err)
		}
	}
	if nonce == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("nats request %s: nonce: %w", subject, err)
		}
		nonce = hex.EncodeToString(b[:])
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, natsDefaultWait)
		defer cancel()
	}
	reply, err := nc.RequestMsgWithContext(ctx, SignedNATSMsg(subject, keyID, secret, data, now, nonce))
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("nats request %s: no blockexec service is listening: %w", subject, err)
	}
	if err != nil {
		return fmt.Errorf("nats request %s: %w", subject, err)
	}
	if aerr := NATSReplyError(reply); aerr != nil {
		return aerr
	}
	if out != nil {
		if err := json.Unmarshal(reply.Data, out); err != nil {
			return fmt.Errorf("nats request %s: decode the reply: %w", subject, err)
		}
	}
	return nil
}

// SignedNATSMsg is a request to the NATS API signed with a key: body for
// subject, at now, with nonce (16 to 64 characters, never reused within
// api.Window). For callers that want the reply's headers (BX-Created,
// Retry-After); NATSRequest is the simpler call.
func SignedNATSMsg(subject, keyID string, secret []byte, body []byte, now time.Time, nonce string) *nats.Msg {
	ts := now.UnixMilli()
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(api.HeaderKey, keyID)
	m.Header.Set(api.HeaderTimestamp, strconv.FormatInt(ts, 10))
	m.Header.Set(api.HeaderNonce, nonce)
	m.Header.Set(api.HeaderSignature, api.Sign(secret, api.Canonical(NATSMethod, subject, "", ts, nonce, body)))
	return m
}

// NATSReplyError returns the *api.Error a reply of the NATS API carries,
// or nil if the reply is not an error.
func NATSReplyError(reply *nats.Msg) *api.Error {
	if reply == nil || reply.Header == nil {
		return nil
	}
	code := reply.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	status, err := strconv.Atoi(code)
	if err != nil {
		status = http.StatusInternalServerError
	}
	var eb api.ErrorBody
	if json.Unmarshal(reply.Data, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		eb.Error.Status = status
		return eb.Error
	}
	// An error from NATS or micro itself, not the API: keep its words.
	return &api.Error{Status: status, Code: api.CodeOf(status), Message: reply.Header.Get(micro.ErrorHeader)}
}
