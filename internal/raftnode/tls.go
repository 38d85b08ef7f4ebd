package raftnode

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStream is raft's network transport over mutual TLS: the listener
// accepts only servers of the cluster CA, the dialer presents this server's
// certificate and accepts only a server at the other end.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

var _ raft.StreamLayer = (*tlsStream)(nil)

func newTLSStream(addr string, server, client *tls.Config) (*tlsStream, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &tlsStream{Listener: tls.NewListener(l, server), client: client, advertise: l.Addr()}
	return s, nil
}

// Accept hands raft a connection whose handshake has completed, so that
// a peer without a server certificate is dropped here, not after raft read
// from it.
func (s *tlsStream) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			continue // refused (logged by the caller's TLS config) or broken
		}
		_ = tc.SetDeadline(time.Time{})
		return tc, nil
	}
}

// Addr is the address raft advertises.
func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Dial opens a mutual TLS connection to another server.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), s.client)
}
