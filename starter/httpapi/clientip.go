package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address rate limits and public Idempotency-Key scopes
// key on: the peer, or, when the peer is a trusted proxy
// (Config.TrustedProxies), the client it forwards for.
func (s *Server) clientIP(r *http.Request) string {
	if len(s.cfg.TrustedProxies) == 0 {
		return peerIP(r.RemoteAddr)
	}
	return clientIPFrom(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.cfg.TrustedProxies)
}

// clientIPFrom is the client address of a connection from peer carrying
// the X-Forwarded-For header lines xff.
//
// A peer that is not a trusted proxy is the client, whatever it sends: the
// header is ignored, so nobody can pick their own rate-limit bucket.
// Behind trusted proxies the answer is the right-most entry that is not
// itself a trusted proxy. Each proxy appends the address it accepted the
// connection from, so the entries our own proxies appended are the
// right-most ones and can be believed; everything to their left was
// written by the client (or by proxies we know nothing of) and can be
// anything. The first untrusted address found walking leftwards is
// therefore the one our outermost proxy saw connecting: the left-most
// entry would be the client's own claim. An entry that is not an address
// stops the walk at the last trusted hop rather than guessing.
func clientIPFrom(peer string, xff []string, trusted []netip.Prefix) string {
	addr, ok := parseAddr(peer)
	if !ok || !inAny(addr, trusted) {
		return peerIP(peer)
	}
	// Several header lines are one comma-separated list (RFC 9110 §5.3).
	entries := strings.Split(strings.Join(xff, ","), ",")
	for i := len(entries) - 1; i >= 0; i-- {
		e := strings.TrimSpace(entries[i])
		if e == "" {
			continue
		}
		a, ok := parseAddr(e)
		if !ok {
			break
		}
		addr = a
		if !inAny(a, trusted) {
			break
		}
	}
	return addr.String()
}

// peerIP is the host part of a RemoteAddr, or all of it when it has none.
func peerIP(remoteAddr string) string {
	if a, ok := parseAddr(remoteAddr); ok {
		return a.String()
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port", IPv4-mapped IPv6
// addresses as IPv4 so one client has one bucket.
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
