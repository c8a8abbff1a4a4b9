package bus

import (
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// operatorCreds sets up a server in operator (JWT) mode with one account
// that may use JetStream, and returns .creds contents for a user of it.
func operatorCreds(t *testing.T, o *server.Options) []byte {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	sys, _ := nkeys.CreateAccount()
	sysPub, _ := sys.PublicKey()
	oc.SystemAccount = sysPub
	_, err := oc.Encode(op)
	must(err)
	sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(op)
	must(err)
	acct, _ := nkeys.CreateAccount()
	acctPub, _ := acct.PublicKey()
	ac := jwt.NewAccountClaims(acctPub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	acctJWT, err := ac.Encode(op)
	must(err)
	res := &server.MemAccResolver{}
	must(res.Store(sysPub, sysJWT))
	must(res.Store(acctPub, acctJWT))
	o.TrustedOperators = []*jwt.OperatorClaims{oc}
	o.AccountResolver = res
	o.SystemAccount = sysPub

	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userJWT, err := jwt.NewUserClaims(userPub).Encode(acct)
	must(err)
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)
	return creds
}

// TestConnect_CredsFile: a user JWT and seed log in to a server in
// operator mode; without them, or with another operator's user, it is
// refused clearly.
func TestConnect_CredsFile(t *testing.T) {
	var creds, foreign []byte
	url := startServer(t, func(o *server.Options) { creds = operatorCreds(t, o) })
	foreign = operatorCreds(t, &server.Options{})
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"creds", Options{URL: url, CredsFile: writeFile(t, "user.creds", creds, 0o600)}, ""},
		{"another operator's user", Options{URL: url, CredsFile: writeFile(t, "foreign.creds", foreign, 0o600)},
			"the server refused the credentials"},
		{"no creds", Options{URL: url}, "the server refused the credentials"},
		{"creds readable by the group", Options{URL: url, CredsFile: writeFile(t, "open.creds", creds, 0o640)},
			"creds file"},
	} {
		t.Run(tc.name, func(t *testing.T) { connectCase(t, tc.opts, tc.want) })
	}
}
