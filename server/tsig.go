package server

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TSIGKey is one shared secret (RFC 8945). View, when set, binds the key to
// a view: a request signed with it is answered (and may update or
// transfer) as that view's clients are, wherever it comes from — BIND's
// match-clients { key …; }.
type TSIGKey struct {
	Name      string // canonical key name, e.g. "ddns-key."
	Algorithm string // canonical miekg form, e.g. dns.HmacSHA256
	Secret    string // base64
	View      string
}

// Algorithms maps the names people write (BIND's, without the trailing
// dot) to miekg's canonical algorithm names.
var tsigAlgorithms = map[string]string{
	"hmac-md5":                 dns.HmacMD5,
	"hmac-md5.sig-alg.reg.int": dns.HmacMD5,
	"hmac-sha1":                dns.HmacSHA1,
	"hmac-sha224":              dns.HmacSHA224,
	"hmac-sha256":              dns.HmacSHA256,
	"hmac-sha384":              dns.HmacSHA384,
	"hmac-sha512":              dns.HmacSHA512,
}

// TSIGAlgorithm returns the canonical name of a TSIG algorithm as written
// in a config or key file ("hmac-sha256", "HMAC-SHA256.").
func TSIGAlgorithm(name string) (string, bool) {
	a, ok := tsigAlgorithms[strings.TrimSuffix(strings.ToLower(name), ".")]
	return a, ok
}

// NewTSIGKey validates a key as configured.
func NewTSIGKey(name, algorithm, secret, view string) (TSIGKey, error) {
	alg, ok := TSIGAlgorithm(algorithm)
	if !ok {
		return TSIGKey{}, fmt.Errorf("tsig key %s: unknown algorithm %q (want hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1 or hmac-md5)", name, algorithm)
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil || len(raw) == 0 {
		// Never quote the secret: it may be nearly right.
		return TSIGKey{}, fmt.Errorf("tsig key %s: secret is not base64", name)
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return TSIGKey{}, fmt.Errorf("tsig key %q: not a valid key name", name)
	}
	return TSIGKey{Name: dns.CanonicalName(name), Algorithm: alg, Secret: secret, View: view}, nil
}

// String never shows the secret, so a key can be logged by mistake safely.
func (k TSIGKey) String() string { return k.Name + " (" + k.Algorithm + ")" }

// keyring verifies and signs with the configured keys; it implements
// dns.TsigProvider, so miekg's TCP server and our UDP path use the same
// checks. An unknown key and a key used with another algorithm are both
// dns.ErrSecret (BADKEY, RFC 8945 §5.2.1 and §5.2.2).
type keyring map[string]TSIGKey

var errKeyAlgorithm = errors.New("tsig: algorithm does not match the key")

func (k keyring) key(t *dns.TSIG) (TSIGKey, error) {
	key, ok := k[dns.CanonicalName(t.Hdr.Name)]
	if !ok {
		return key, dns.ErrSecret
	}
	if dns.CanonicalName(t.Algorithm) != key.Algorithm {
		return key, errKeyAlgorithm
	}
	return key, nil
}

func (k keyring) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	key, err := k.key(t)
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(key.Secret)
	if err != nil {
		return nil, err
	}
	var h func() hash.Hash
	switch key.Algorithm {
	case dns.HmacMD5:
		h = md5.New
	case dns.HmacSHA1:
		h = sha1.New
	case dns.HmacSHA224:
		h = sha256.New224
	case dns.HmacSHA256:
		h = sha256.New
	case dns.HmacSHA384:
		h = sha512.New384
	case dns.HmacSHA512:
		h = sha512.New
	default:
		return nil, dns.ErrKeyAlg
	}
	m := hmac.New(h, raw)
	m.Write(msg)
	return m.Sum(nil), nil
}

func (k keyring) Verify(msg []byte, t *dns.TSIG) error {
	want, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}

// tsigVerdict turns the transport's TSIG status for a signed request into
// the key that signed it, or the RFC 8945 error to answer with.
func (s *Server) tsigVerdict(w dns.ResponseWriter, r *dns.Msg) (TSIGKey, uint16) {
	t := r.IsTsig()
	if t == nil {
		return TSIGKey{}, dns.RcodeSuccess
	}
	key, kerr := s.pol.Load().keys.key(t)
	if kerr != nil {
		s.stats.TSIGBadKey.Add(1)
		return TSIGKey{}, dns.RcodeBadKey
	}
	switch err := w.TsigStatus(); {
	case err == nil:
		return key, dns.RcodeSuccess
	case errors.Is(err, dns.ErrTime):
		s.stats.TSIGBadTime.Add(1)
		return key, dns.RcodeBadTime
	default:
		s.stats.TSIGBadSig.Add(1)
		return key, dns.RcodeBadSig
	}
}

// signReply adds a TSIG to m for the key that signed r; the transport's
// writer computes the MAC over the request's (RFC 8945 §5.3). For BADKEY
// and BADSIG the TSIG goes out unsigned (MAC empty); for BADTIME it is
// signed and carries our time (§5.2.3).
func signReply(m, r *dns.Msg, key TSIGKey, tsigErr uint16) {
	t := r.IsTsig()
	alg := key.Algorithm
	if alg == "" {
		alg = t.Algorithm
	}
	now := time.Now().Unix()
	m.SetTsig(t.Hdr.Name, alg, 300, now)
	rt := m.Extra[len(m.Extra)-1].(*dns.TSIG)
	rt.Error = tsigErr
	rt.OrigId = r.Id
	if tsigErr == dns.RcodeBadTime {
		rt.TimeSigned = t.TimeSigned
		rt.OtherLen = 6
		rt.OtherData = fmt.Sprintf("%012x", uint64(now))
	}
}

// tsigProvider hands miekg (TCP) and our UDP path the keys of the policy in
// force, so a reload that changes keys applies to the next message.
type tsigProvider struct{ s *Server }

func (p tsigProvider) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	return p.s.pol.Load().keys.Generate(msg, t)
}

func (p tsigProvider) Verify(msg []byte, t *dns.TSIG) error {
	return p.s.pol.Load().keys.Verify(msg, t)
}
