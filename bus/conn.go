package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// dedupWindow is how long JetStream remembers a Nats-Msg-Id. Longer than
// any publish retry, so a retried fill is stored once.
const dedupWindow = 2 * time.Hour

// Options say where the bus is and, for an external server, how to log
// in: a user:password in the URL, a creds file or an nkey seed file, and
// TLS with a CA and a client certificate. The files are read at Connect.
type Options struct {
	URL      string // empty: run an embedded server
	StoreDir string // the embedded server's JetStream store
	Name     string // connection name, shown by the server

	CredsFile    string // user JWT and seed (nats.UserCredentials); group/others may not read it
	NKeySeedFile string // an nkey seed (nats.NkeyOptionFromSeed); group/others may not read it
	TLSCAFile    string // PEM CAs for the server's certificate (nats.RootCAs)
	TLSCertFile  string // PEM client certificate (nats.ClientCert), with TLSKeyFile
	TLSKeyFile   string

	// Replicas is how many servers of a cluster keep each stream (and,
	// through Conn.Replicas, each bucket); 0 means 1.
	Replicas int
}

// Conn is a connection to NATS with JetStream, and the embedded server
// behind it if there is one.
type Conn struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	srv    *server.Server
	closed chan struct{}

	url      string
	base     []nats.Option // how to reach the server, for Dial
	replicas int
}

// StartEmbedded runs a nats-server with JetStream in this process, with no
// TCP listener: clients connect with nats.InProcessServer.
func StartEmbedded(storeDir string) (*server.Server, error) {
	if storeDir == "" {
		return nil, errors.New("embedded nats: no store directory")
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "blockexec-embedded",
		JetStream:  true,
		StoreDir:   storeDir,
		DontListen: true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s (store %s)", storeDir)
	}
	return srv, nil
}

// Connect connects to opts.URL, or starts an embedded server and connects
// to it in process, then makes sure the streams exist.
func Connect(ctx context.Context, opts Options, log zerolog.Logger) (*Conn, error) {
	c := &Conn{closed: make(chan struct{})}
	name := opts.Name
	if name == "" {
		name = "blockexec"
	}
	var base []nats.Option // how to reach the server: Dial uses them too
	var handlers []nats.Option
	if opts.URL == "" {
		srv, err := StartEmbedded(opts.StoreDir)
		if err != nil {
			return nil, err
		}
		c.srv = srv
		base = append(base, nats.InProcessServer(srv))
	} else {
		auth, err := opts.authOptions()
		if err != nil {
			return nil, fmt.Errorf("connect nats %s: %w", redactURL(opts.URL), err)
		}
		base = append(auth, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
		handlers = append(handlers,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				log.Warn().Err(err).Msg("nats disconnected")
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("nats reconnected")
			}),
		)
	}
	c.url, c.base, c.replicas = opts.URL, base, max(opts.Replicas, 1)
	nopts := append([]nats.Option{nats.Name(name), nats.DrainTimeout(10 * time.Second),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) })}, base...)
	nopts = append(nopts, handlers...)
	nc, err := nats.Connect(opts.URL, nopts...)
	if err != nil {
		c.shutdownServer()
		return nil, fmt.Errorf("connect nats %s%s: %w", redactURL(opts.URL), opts.describeAuth(), opts.explain(err))
	}
	c.NC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.JS = js
	if err := EnsureStreams(ctx, js, c.replicas); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Dial opens another connection to the same server, with the same
// credentials (in process for the embedded one), named name. A busy
// publisher and a consumer's acks queue behind each other on one
// connection; each on its own keeps them apart. The caller closes it.
func (c *Conn) Dial(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(c.url, append([]nats.Option{nats.Name(name)}, c.base...)...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", redactURL(c.url), err)
	}
	return nc, nil
}

// Embedded reports whether the connection runs its own server.
func (c *Conn) Embedded() bool { return c.srv != nil }

// Close drains the connection, then shuts the embedded server down.
func (c *Conn) Close() {
	if c.NC != nil {
		if err := c.NC.Drain(); err == nil {
			<-c.closed // the drain ends in Close, bounded by the drain timeout
		}
		c.NC.Close()
	}
	c.shutdownServer()
}

func (c *Conn) shutdownServer() {
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
		c.srv = nil
	}
}

// EnsureStreams creates or updates the fills and events streams, each
// kept by replicas servers. An existing stream is scaled up to it, never
// down: a process whose config leaves replicas out (a recorder, say) must
// not take copies away from the ones a cluster's engines asked for.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	replicas = ReplicasAtLeast(ctx, js, replicas, FillsStream, EventsStream)
	for _, sc := range []jetstream.StreamConfig{
		{Name: FillsStream, Subjects: []string{FillsSubject + ".>"}, Storage: jetstream.FileStorage, Duplicates: dedupWindow,
			Replicas: replicas, Description: "every fill of every child order, Nats-Msg-Id venue:trade_id"},
		{Name: EventsStream, Subjects: []string{EventsSubject + ".>"}, Storage: jetstream.FileStorage, Duplicates: dedupWindow,
			Replicas: replicas, Description: "parent and child order events, Nats-Msg-Id parent:seq"},
	} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s with %d replicas: %w", sc.Name, replicas, err)
		}
	}
	return nil
}

// ReplicasAtLeast is replicas (at least 1), or more if one of the named
// streams exists with more: shared streams and buckets (a bucket's stream
// is KV_<bucket>) are scaled up, never down, so that a process whose
// config leaves replicas out does not take copies away from the ones a
// cluster's engines asked for.
func ReplicasAtLeast(ctx context.Context, js jetstream.JetStream, replicas int, streams ...string) int {
	replicas = max(replicas, 1)
	for _, name := range streams {
		if s, err := js.Stream(ctx, name); err == nil {
			if info, err := s.Info(ctx); err == nil {
				replicas = max(replicas, info.Config.Replicas)
			}
		}
	}
	return replicas
}

// Replicas is how many servers keep each stream: the buckets beside them
// (checkpoints, heartbeats) are created with as many.
func (c *Conn) Replicas() int { return c.replicas }

// redactURL hides any password in a NATS URL before it reaches an error
// or a log.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "[unparsable url]"
	}
	return p.Redacted()
}

// ParentSeen reports whether a parent with this id was ever accepted on
// this bus: parent ids are the de-duplication key of events, so one must
// never be reused.
func ParentSeen(ctx context.Context, js jetstream.JetStream, parent string) (bool, error) {
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	_, err = s.GetLastMsgForSubject(ctx, EventSubjectFor(parent, KindAccepted))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up parent %s: %w", parent, err)
	}
	return true, nil
}
