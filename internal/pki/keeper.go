package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"time"
)

// Keeper holds a certificate with its key and swaps it in place when it
// is renewed: every TLS config built on it serves the new one from the next
// handshake, without a restart.
type Keeper struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewKeeper holds a PEM certificate (with any chain after it) and its key.
func NewKeeper(certPEM, keyPEM []byte) (*Keeper, error) {
	k := &Keeper{}
	return k, k.Set(certPEM, keyPEM)
}

// Set swaps in a new certificate and key.
func (k *Keeper) Set(certPEM, keyPEM []byte) error {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return err
		}
	}
	k.cur.Store(&c)
	return nil
}

// Leaf is the certificate held now.
func (k *Keeper) Leaf() *x509.Certificate { return k.cur.Load().Leaf }

// Due says whether the certificate has used two thirds of its lifetime (or
// is not valid yet or any more): time to renew.
func (k *Keeper) Due(now time.Time) bool {
	l := k.Leaf()
	life := l.NotAfter.Sub(l.NotBefore)
	return now.After(l.NotBefore.Add(life*2/3)) || now.Before(l.NotBefore)
}

func (k *Keeper) get() (*tls.Certificate, error) {
	if c := k.cur.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no certificate")
}
