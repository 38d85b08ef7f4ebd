package pki

import (
	"fmt"
	"os"
	"path/filepath"
)

// Files are the PEM files of one holder in a directory: the CA's
// certificate (and its key, on a server that issues), the holder's
// certificate and key.
type Files struct{ Dir string }

// CA is the cluster CA's certificate.
func (f Files) CA() string { return filepath.Join(f.Dir, "ca.pem") }

// CAKey is the CA's private key (servers only).
func (f Files) CAKey() string { return filepath.Join(f.Dir, "ca-key.pem") }

// Cert is the holder's certificate, followed by the CA's.
func (f Files) Cert() string { return filepath.Join(f.Dir, "cert.pem") }

// Key is the holder's private key.
func (f Files) Key() string { return filepath.Join(f.Dir, "key.pem") }

// Write writes a file atomically (a new name, then a rename), 0600 for a
// secret and 0644 otherwise.
func Write(path string, data []byte, secret bool) error {
	mode := os.FileMode(0o644)
	if secret {
		mode = 0o600
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadCA reads a CA certificate and, when keyPath is not empty and exists,
// its key (a CA without a key can verify but not issue).
func LoadCA(certPath, keyPath string) (*CA, error) {
	b, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA: %w", err)
	}
	cert, err := ParseCert(b)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	ca := &CA{Cert: cert}
	if keyPath == "" {
		return ca, nil
	}
	kb, err := os.ReadFile(keyPath)
	if os.IsNotExist(err) {
		return ca, nil
	}
	if err != nil {
		return nil, err
	}
	if ca.Key, err = ParseKey(kb); err != nil {
		return nil, fmt.Errorf("the CA key %s: %w", keyPath, err)
	}
	return ca, nil
}

// CanIssue says whether the CA has its key.
func (ca *CA) CanIssue() bool { return ca.Key != nil }

// LoadCAFromPEM reads a CA certificate and its key (keyPEM may be empty).
func LoadCAFromPEM(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("the cluster CA %q is not a CA certificate", cert.Subject.CommonName)
	}
	ca := &CA{Cert: cert}
	if len(keyPEM) > 0 {
		if ca.Key, err = ParseKey(keyPEM); err != nil {
			return nil, fmt.Errorf("the CA key: %w", err)
		}
	}
	return ca, nil
}
