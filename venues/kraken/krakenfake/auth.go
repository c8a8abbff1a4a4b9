package krakenfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// maxBody bounds what the fake reads of a request.
const maxBody = 1 << 20

// private serves an authenticated method as Kraken does: POST only, a
// form body carrying nonce, the API-Key header naming the key, API-Sign =
// base64(HMAC-SHA512(base64-decoded secret, URI path + SHA256(nonce + POST
// body))), and a nonce greater than the last one the key used. A request
// that fails any check is answered with Kraken's error and changes nothing.
func (s *Server) private(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments")
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments")
			return
		}
		if !hmac.Equal([]byte(r.Header.Get("API-Key")), []byte(s.o.APIKey)) {
			writeErrors(w, http.StatusOK, "EAPI:Invalid key")
			return
		}
		nonceText := form.Get("nonce")
		sig, err := base64.StdEncoding.DecodeString(r.Header.Get("API-Sign"))
		if err != nil || !hmac.Equal(sig, sign(s.secret, r.URL.Path, nonceText, body)) {
			writeErrors(w, http.StatusOK, "EAPI:Invalid signature")
			return
		}
		nonce, err := strconv.ParseUint(nonceText, 10, 64)
		if err != nil {
			writeErrors(w, http.StatusOK, "EAPI:Invalid nonce")
			return
		}
		s.mu.Lock()
		if nonce <= s.lastNonce {
			s.mu.Unlock()
			writeErrors(w, http.StatusOK, "EAPI:Invalid nonce")
			return
		}
		s.lastNonce = nonce
		s.mu.Unlock()
		h(w, r, form)
	}
}

// sign is Kraken's request signature over path (/0/private/Method), the
// nonce's text and the exact POST body, with the decoded secret: HMAC-SHA512
// of path + SHA256(nonce + body). Base64 it for the API-Sign header.
func sign(secret []byte, path, nonce string, body []byte) []byte {
	sum := sha256.New()
	sum.Write([]byte(nonce))
	sum.Write(body)
	mac := hmac.New(sha512.New, secret)
	mac.Write([]byte(path))
	mac.Write(sum.Sum(nil))
	return mac.Sum(nil)
}
