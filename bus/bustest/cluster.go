// Package bustest runs NATS servers for tests: a JetStream cluster on
// loopback, in the test's process.
package bustest

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster runs a JetStream cluster of n servers on loopback ports,
// in this process, stores under the test's temporary directories, and
// returns them once JetStream has a meta leader that every server
// follows. They are shut down when the test ends.
func StartCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	ports := freePorts(t, 2*n)
	var routes []*url.URL
	for i := range n {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[n+i])})
	}
	var srvs []*server.Server
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("bx-%d", i), Host: "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
			Cluster: server.ClusterOpts{Name: "bx", Host: "127.0.0.1", Port: ports[n+i]},
			Routes:  routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		srvs = append(srvs, s)
	}
	for deadline := time.Now().Add(30 * time.Second); !ready(srvs); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cluster elected no JetStream meta leader in 30 s")
		}
	}
	return srvs
}

// ClientURLs is the servers' client URLs, comma-separated as nats.Connect
// takes them.
func ClientURLs(srvs []*server.Server) string {
	s := ""
	for i, srv := range srvs {
		if i > 0 {
			s += ","
		}
		s += srv.ClientURL()
	}
	return s
}

// freePorts returns n TCP ports free on loopback now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// ready reports whether a meta leader is elected and every server follows
// it.
func ready(srvs []*server.Server) bool {
	leader := false
	for _, s := range srvs {
		if !s.JetStreamIsCurrent() {
			return false
		}
		leader = leader || s.JetStreamIsLeader()
	}
	return leader
}

// Retry calls try every 200 ms until it returns nil or timeout has
// passed, and returns its last error: a cluster electing a leader refuses
// for a moment what it takes after.
func Retry(timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// StartServer runs one nats-server with JetStream on a loopback port, in
// this process, storing under the test's temporary directory; it is shut
// down when the test ends.
func StartServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{ServerName: "bx", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready after 10 s")
	}
	return s
}
