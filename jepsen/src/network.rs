//! The two ways the harness cuts links between nodes (`--net`): the fault-injecting
//! [`proxy`](crate::proxy) (no root needed; holds bytes or resets connections), or
//! [`netfilter`](crate::netfilter) rules that drop packets in the harness's own network
//! namespace (root). The nemesis chooses what to cut; [`Links`] only does the cutting.

use std::net::Ipv4Addr;

use crate::netfilter::Netfilter;
use crate::proxy::{Endpoint, Faults};

/// How links between nodes are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// Every node-to-node and client-to-node link through the proxy.
    Proxy,
    /// Nodes talk directly, cut by nftables rules in a network namespace; clients still
    /// go through the proxy.
    Nftables,
}

impl NetMode {
    pub fn parse(name: &str) -> Option<NetMode> {
        match name {
            "proxy" => Some(NetMode::Proxy),
            "nftables" => Some(NetMode::Nftables),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NetMode::Proxy => "proxy",
            NetMode::Nftables => "nftables",
        }
    }
}

/// The largest node number: its address, `127.0.0.109`, is the last that
/// [`source_by_ip`](crate::proxy::source_by_ip) maps to a node.
pub const MAX_NODE: usize = 99;

/// Node `number`'s own address, `127.0.0.(10+number)`: it leaves from it for the other
/// nodes, and in the nftables mode listens on it for them.
pub fn node_ip(number: usize) -> anyhow::Result<Ipv4Addr> {
    anyhow::ensure!(
        (1..=MAX_NODE).contains(&number),
        "node numbers go from 1 to {MAX_NODE}, not {number}"
    );
    Ok(Ipv4Addr::new(127, 0, 0, (10 + number) as u8))
}

/// The links between nodes, as the mode in force cuts them.
pub enum Links<'a> {
    Proxy(Faults),
    Nftables(&'a Netfilter),
}

impl Links<'_> {
    /// Cuts the link from node `from` to node `to` (node numbers): both directions, or
    /// only `from` → `to` when `one_way`. Through the proxy, a cut both ways resets the
    /// link's connections and a one-way cut holds the bytes; with nftables, packets are
    /// dropped either way.
    pub fn cut(&self, from: usize, to: usize, one_way: bool) -> anyhow::Result<()> {
        match self {
            Links::Proxy(faults) => {
                let (from, to) = (Endpoint::Node(from), Endpoint::Node(to));
                if one_way {
                    faults.block(from, to);
                } else {
                    faults.partition(from, to);
                }
            }
            Links::Nftables(netfilter) => {
                let (from, to) = (node_ip(from)?, node_ip(to)?);
                netfilter.block(from, to)?;
                if !one_way {
                    netfilter.block(to, from)?;
                }
            }
        }
        Ok(())
    }

    /// Restores every link cut.
    pub fn heal(&self) -> anyhow::Result<()> {
        match self {
            Links::Proxy(faults) => faults.heal(),
            Links::Nftables(netfilter) => netfilter.heal()?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{Proxy, source_by_ip};

    #[test]
    fn node_addresses_match_the_proxys_source_rule() {
        for number in [1, 4, MAX_NODE] {
            let ip = node_ip(number).unwrap();
            assert_eq!(source_by_ip(ip.into()), Endpoint::Node(number));
        }
        assert!(node_ip(0).is_err());
        assert!(node_ip(MAX_NODE + 1).is_err());
        assert_eq!(NetMode::parse("nftables"), Some(NetMode::Nftables));
        assert_eq!(NetMode::parse(NetMode::Proxy.name()), Some(NetMode::Proxy));
        assert_eq!(NetMode::parse("iptables"), None);
    }

    #[test]
    fn proxy_cuts_one_or_both_directions() {
        let proxy = Proxy::new();
        let links = Links::Proxy(proxy.faults());
        let faults = proxy.faults();
        let (n1, n2, n3) = (Endpoint::Node(1), Endpoint::Node(2), Endpoint::Node(3));
        links.cut(1, 2, true).unwrap();
        assert!(faults.is_blocked(n1, n2));
        assert!(!faults.is_blocked(n2, n1));
        links.cut(1, 3, false).unwrap();
        assert!(faults.is_blocked(n1, n3) && faults.is_blocked(n3, n1));
        links.heal().unwrap();
        assert!(!faults.is_blocked(n1, n2) && !faults.is_blocked(n1, n3));
        assert!(!faults.is_blocked(n3, n1));
    }
}
