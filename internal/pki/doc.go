// Package pki owns Restored's certificates: the cluster CA, the server and
// agent certificates it issues and the identity they carry (a role and a
// name, as a URI SAN: restored://server/<node-id>, restored://agent/<host-id>),
// fingerprints for pinning the CA, the files they live in, and the TLS 1.3
// configurations every port and every client uses. A certificate is
// renewed before it expires by swapping it in place (Keeper), without a
// restart.
//
// What it must not do: decide who may call what (the API's rules and
// interceptors do, from the Identity this package reads).
package pki
