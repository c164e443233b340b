// Package tlsid provides the mutual TLS identity of a weft proxy: its own
// SPIFFE X.509 certificate and the trust bundle it verifies peers against,
// and the tls.Config values used for weft-to-weft connections.
//
// In this first version the material comes from PEM files supplied by the
// operator ("bring your own certificate"): a certificate file holding the
// leaf followed by its intermediates, a private key file, and a trust bundle
// file holding one or more root CA certificates (several roots allow a CA
// rotation without downtime). Issuance by the weft control plane will later
// feed the same Source type.
//
// A Source holds the current material and swaps it atomically on Reload or
// when Watch sees the files change (including the atomic directory swaps done
// by Kubernetes Secret volumes and cert-manager). Configs returned by
// ServerConfig and ClientConfig look the material up on every handshake, so a
// reload applies to new connections without a restart and without disturbing
// connections that are already open.
//
// Identity rules:
//
//   - The leaf certificate must carry exactly one URI SAN, a SPIFFE ID such as
//     spiffe://cluster.local/ns/<namespace>/sa/<service-account>.
//   - The trust bundle file is taken to hold the authorities of ONE trust
//     domain: the trust domain of the proxy's own SPIFFE ID. Peers whose
//     SPIFFE ID is in another trust domain are rejected. Federation between
//     trust domains is a later feature; verification already goes through an
//     x509bundle.Set so it can hold more than one trust domain.
//   - Hostnames are not used in the mesh: a client names the peer it expects
//     by SPIFFE ID, and the handshake fails unless the peer proves exactly
//     that ID with a chain to the current trust bundle.
//   - Only TLS 1.3 is accepted, and both sides must present certificates.
//
// Weft peers also agree on an application protocol through ALPN (ALPNHTTP2,
// ALPNHTTP1, ALPNOpaque); a handshake in which none is negotiated is rejected
// when the config was built with protocols, so a connection can never be
// read with the wrong framing.
package tlsid
