//! Addresses as the per-IP counts see them.

use std::net::IpAddr;

/// The block an address is counted under: an IPv4 address on its own, an IPv6 address by
/// its /64 (the block one subscriber usually holds, so that rotating addresses inside it
/// changes nothing). IPv4-mapped IPv6 addresses count as their IPv4 address. Every
/// per-IP counter (guest quota, log-in brake, registrations) keys on this.
pub fn ip_block(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_blocked_per_64() {
        assert_eq!(ip_block(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            ip_block(ip("2001:db8:1:2:aaaa::1")),
            ip_block(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            ip_block(ip("2001:db8:1:2::1")),
            ip_block(ip("2001:db8:1:3::1"))
        );
        assert_eq!(ip_block(ip("10.1.2.3")), "10.1.2.3");
        assert_eq!(ip_block(ip("::ffff:10.1.2.3")), "10.1.2.3");
    }
}
