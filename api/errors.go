package api

import (
	"fmt"
	"net/http"
)

// Error codes, stable for clients to switch on.
const (
	CodeBadRequest       = "bad_request"        // 400: the body or a parameter; Field says which
	CodeUnauthorized     = "unauthorized"       // 401: no key, unknown key, bad signature, stale timestamp, nonce reused
	CodeForbidden        = "forbidden"          // 403: the key lacks the scope
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405: the path exists; Allow says which methods
	CodeConflict         = "conflict"           // 409: client_order_id reused with another body, or the order has ended
	CodeTooLarge         = "too_large"          // 413: a body over the limit
	CodeRateLimited      = "rate_limited"       // 429: per-key rate limit; Retry-After says when
	CodeUnavailable      = "unavailable"        // 503: the engine is not serving
	CodeKilled           = "killed"             // 503: the kill switch is engaged; an admin releases it
	CodeInternal         = "internal_error"     // 500
)

// Error is every error the API answers, with the HTTP status it goes with.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field is the request field at fault, as a JSON path
	// ("quantity", "pov.rate", "venues[1]").
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return e.Code + ": " + e.Message
}

// ErrorBody is how an error travels: {"error": {...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// BadField is a 400 on one field.
func BadField(field, format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, a...)}
}

// Errorf makes an error of a status and code.
func Errorf(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// CodeOf is the code that goes with an HTTP status, for an answer that
// carries no API error body (a proxy's page, a NATS transport error).
func CodeOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	return CodeInternal
}
