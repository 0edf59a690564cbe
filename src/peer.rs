//! Who is on the other end of a request: the client's address, scheme and
//! host, as far as this server can trust them.
//!
//! The socket's peer address is a fact. `X-Forwarded-For`, `Forwarded`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host` are claims anyone can make,
//! so they are believed only when the socket's peer is a proxy named in
//! `CHAT_TRUSTED_PROXIES` (default: none). Per-address limits and the
//! same-origin check both start here, so they cannot disagree about who
//! the client is.
//!
//! For a chain of proxies the client is the rightmost forwarded address
//! that is not itself a trusted proxy: entries to its left were written by
//! the client and prove nothing.

use axum::extract::ConnectInfo;
use http::{header, Extensions, HeaderMap};
use std::net::{IpAddr, SocketAddr};

/// A network, `10.0.0.0/8` or `::1/128`; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The trusted proxies, and what follows from them.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    trusted: Vec<Cidr>,
}

impl Peer {
    pub fn new(trusted: Vec<Cidr>) -> Self {
        Self { trusted }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The socket's peer, when the server recorded it.
    pub fn socket_ip(extensions: &Extensions) -> Option<IpAddr> {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| canonical(addr.ip()))
    }

    /// Whether the forwarding headers of this request may be believed.
    pub fn from_trusted_proxy(&self, extensions: &Extensions) -> bool {
        Self::socket_ip(extensions).is_some_and(|ip| self.trusts(ip))
    }

    /// The client's address: the socket's, or, behind a trusted proxy,
    /// the rightmost untrusted forwarded one.
    pub fn client_ip(&self, parts: &http::request::Parts) -> Option<IpAddr> {
        self.client_ip_of(&parts.headers, &parts.extensions)
    }

    pub fn client_ip_of(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        let socket = Self::socket_ip(extensions)?;
        if !self.trusts(socket) {
            return Some(socket);
        }
        let mut chain = forwarded_for(headers);
        // Walk from the proxy nearest us outwards.
        chain.reverse();
        let mut client = socket;
        for hop in chain {
            let Some(ip) = hop else {
                // An entry we cannot read: stop at the last one we could.
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }

    /// `https` or `http`, as a trusted proxy reports the client's scheme.
    pub fn forwarded_proto<'a>(
        &self,
        headers: &'a HeaderMap,
        extensions: &Extensions,
    ) -> Option<&'a str> {
        self.trusted_header(headers, extensions, "x-forwarded-proto")
    }

    /// The host the client asked a trusted proxy for.
    pub fn forwarded_host<'a>(
        &self,
        headers: &'a HeaderMap,
        extensions: &Extensions,
    ) -> Option<&'a str> {
        self.trusted_header(headers, extensions, "x-forwarded-host")
    }

    /// A header only a trusted proxy may set, once.
    fn trusted_header<'a>(
        &self,
        headers: &'a HeaderMap,
        extensions: &Extensions,
        name: &str,
    ) -> Option<&'a str> {
        if !self.from_trusted_proxy(extensions) {
            return None;
        }
        single(headers, name)
    }
}

/// The value of a header that must appear once (the first of a list).
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    value.split(',').next().map(str::trim)
}

/// Every hop of `X-Forwarded-For` (or, without it, of `Forwarded`'s
/// `for=`), in order; `None` for one that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<_> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|hop| hop.trim().parse::<IpAddr>().ok().map(canonical))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all(header::FORWARDED)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("for=?").split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for")
                    .then(|| forwarded_node(value))
            })
        })
        .collect()
}

/// `for=` of RFC 7239: `1.2.3.4`, `"1.2.3.4:80"`, `"[2001:db8::1]:80"`.
fn forwarded_node(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    let host = value.split_once(':').map_or(value, |(host, _)| host);
    host.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(socket: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder();
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        let addr: SocketAddr = socket.parse().unwrap();
        parts.extensions.insert(ConnectInfo(addr));
        parts
    }

    fn peer(trusted: &[&str]) -> Peer {
        Peer::new(trusted.iter().map(|t| Cidr::parse(t).unwrap()).collect())
    }

    #[test]
    fn networks_parse_and_contain_their_addresses() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains("2001:db8:1::5".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/", "10.0.0.0/+8", "::/129"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
        let parts = request(
            "203.0.113.5:4000",
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "example.com"),
            ],
        );
        let peer = peer(&[]);
        assert_eq!(peer.client_ip(&parts), "203.0.113.5".parse().ok());
        assert_eq!(
            peer.forwarded_proto(&parts.headers, &parts.extensions),
            None
        );
        assert_eq!(peer.forwarded_host(&parts.headers, &parts.extensions), None);
    }

    #[test]
    fn a_trusted_proxy_names_the_rightmost_untrusted_hop() {
        let parts = request(
            "10.0.0.2:4000",
            &[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.9")],
        );
        let peer = peer(&["10.0.0.0/8"]);
        assert_eq!(peer.client_ip(&parts), "198.51.100.7".parse().ok());
        let parts = request(
            "10.0.0.2:4000",
            &[("forwarded", "for=\"[2001:db8::7]:443\";proto=https")],
        );
        assert_eq!(peer.client_ip(&parts), "2001:db8::7".parse().ok());
        let parts = request("10.0.0.2:4000", &[("x-forwarded-proto", "https")]);
        assert_eq!(
            peer.forwarded_proto(&parts.headers, &parts.extensions),
            Some("https")
        );
    }
}
