package forwarder

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// amazonDNS is the Amazon-provided resolver's link-local address. It answers
// from every VPC on Nitro instances, so it is the fallback when the VPC CIDR is
// unknown.
const amazonDNS = "169.254.169.253"

// VPCKeyword is the upstream spelling that ParseUpstream (and so New, with
// Config.VPCCIDR) turns into the VPC's Amazon-provided resolver.
const VPCKeyword = "vpc"

// VPCResolver returns the address of the Amazon-provided DNS resolver of a VPC:
// the VPC's base address plus two ("10.0.0.0/16" -> "10.0.0.2"). With an empty
// CIDR it returns the link-local 169.254.169.253, which works from any VPC.
func VPCResolver(vpcCIDR string) (string, error) {
	if vpcCIDR == "" {
		return amazonDNS, nil
	}
	p, err := parseVPCPrefix(vpcCIDR)
	if err != nil {
		return "", err
	}
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += 2
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String(), nil
}

// parseVPCPrefix parses an IPv4 VPC CIDR and returns it masked. Base+2 must lie
// inside the prefix, so anything longer than /30 is rejected.
func parseVPCPrefix(vpcCIDR string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(vpcCIDR))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("vpc cidr %q: %w", vpcCIDR, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("vpc cidr %q: not an IPv4 prefix", vpcCIDR)
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("vpc cidr %q: prefix longer than /30 has no resolver address", vpcCIDR)
	}
	return p.Masked(), nil
}

// ParseUpstream turns an upstream spelling into "host:port": "vpc" (the VPC's
// Amazon-provided resolver, see VPCResolver), "IP" (port 53), "IP:port" or
// "[IPv6]:port". Host names are rejected: resolving an upstream through DNS
// would make the forwarder depend on itself.
func ParseUpstream(s, vpcCIDR string) (string, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, VPCKeyword) {
		ip, err := VPCResolver(vpcCIDR)
		if err != nil {
			return "", fmt.Errorf("upstream %q: %w", s, err)
		}
		return netip.AddrPortFrom(netip.MustParseAddr(ip), 53).String(), nil
	}
	if t == "" {
		return "", errors.New("upstream: empty address")
	}
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(t); err == nil {
		ap = netip.AddrPortFrom(a, 53)
	} else {
		var perr error
		ap, perr = netip.ParseAddrPort(t)
		if perr != nil {
			return "", fmt.Errorf("upstream %q: want IP, IP:port or [IPv6]:port: %w", s, perr)
		}
		if ap.Port() == 0 {
			return "", fmt.Errorf("upstream %q: port 0", s)
		}
	}
	a := ap.Addr().Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return "", fmt.Errorf("upstream %q: not a unicast address", s)
	}
	return netip.AddrPortFrom(a, ap.Port()).String(), nil
}

// AWSRules returns the built-in forwarding rules for names only the VPC's
// Amazon-provided resolver can answer: amazonaws.com., compute.internal.,
// ec2.internal. and the in-addr.arpa zones covering vpcCIDR (rounded to octet
// boundaries: /16 -> one zone, /20 -> sixteen /24 zones, /28 -> its /24 zone).
// Every rule uses the "vpc" upstream keyword, which New resolves with
// Config.VPCCIDR. An unparsable CIDR yields no reverse rules; New reports the
// CIDR error when it resolves "vpc".
func AWSRules(vpcCIDR string) []Rule {
	up := []string{VPCKeyword}
	rules := []Rule{
		{Suffix: "amazonaws.com.", Upstreams: up, Policy: PolicySequential},
		{Suffix: "compute.internal.", Upstreams: up, Policy: PolicySequential},
		{Suffix: "ec2.internal.", Upstreams: up, Policy: PolicySequential},
	}
	if vpcCIDR == "" {
		return rules
	}
	p, err := parseVPCPrefix(vpcCIDR)
	if err != nil {
		return rules
	}
	for _, z := range reverseZones(p) {
		rules = append(rules, Rule{Suffix: z, Upstreams: up, Policy: PolicySequential})
	}
	return rules
}

// reverseZones lists the in-addr.arpa zones on octet boundaries that cover p,
// in address order. Zones are at most /24 deep: finer reverse delegation
// (RFC 2317) is not what the VPC resolver serves.
func reverseZones(p netip.Prefix) []string {
	octets := (p.Bits() + 7) / 8
	octets = max(1, min(octets, 3))
	n := 1
	if extra := octets*8 - p.Bits(); extra > 0 {
		n = 1 << extra
	}
	a := p.Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	step := uint32(1) << (32 - octets*8)
	zones := make([]string, 0, n)
	for i := range n {
		v := base + uint32(i)*step
		b := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
		var sb strings.Builder
		for j := octets - 1; j >= 0; j-- {
			sb.WriteString(strconv.Itoa(int(b[j])))
			sb.WriteByte('.')
		}
		sb.WriteString("in-addr.arpa.")
		zones = append(zones, sb.String())
	}
	return zones
}
