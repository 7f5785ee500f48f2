//! The hosted zones: built from `[dns]` configuration (or, with none
//! configured, one zone per organisation domain), each with its static
//! records (SOA, NS, A/AAAA for configured hosts, the LDAP SRV records)
//! kept both structured (for zone files) and pre-encoded (for answers).
//! Certificates are not here: they come from the core's publication view.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use super::DnsError;
use super::wire::{self, TYPE_A, TYPE_AAAA, TYPE_NS, TYPE_SRV};
use crate::config::{DnsConfig, ZoneConfig};
use crate::core::NameKey;
use crate::domain::Organisation;

/// The data of one static record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticData {
    Ns(NameKey),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: NameKey,
    },
}

impl StaticData {
    pub fn rtype(&self) -> u16 {
        match self {
            StaticData::Ns(_) => TYPE_NS,
            StaticData::A(_) => TYPE_A,
            StaticData::Aaaa(_) => TYPE_AAAA,
            StaticData::Srv { .. } => TYPE_SRV,
        }
    }

    /// RDATA in wire form (names uncompressed, as RFC 2782 wants for SRV).
    pub fn wire(&self) -> Vec<u8> {
        match self {
            StaticData::Ns(name) => wire::name_wire(name.as_bytes()),
            StaticData::A(ip) => ip.octets().to_vec(),
            StaticData::Aaaa(ip) => ip.octets().to_vec(),
            StaticData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let mut out = Vec::new();
                out.extend_from_slice(&priority.to_be_bytes());
                out.extend_from_slice(&weight.to_be_bytes());
                out.extend_from_slice(&port.to_be_bytes());
                out.extend_from_slice(&wire::name_wire(target.as_bytes()));
                out
            }
        }
    }

    /// Type and RDATA in zone-file presentation form.
    pub fn presentation(&self) -> String {
        match self {
            StaticData::Ns(name) => format!("NS {name}"),
            StaticData::A(ip) => format!("A {ip}"),
            StaticData::Aaaa(ip) => format!("AAAA {ip}"),
            StaticData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("SRV {priority} {weight} {port} {target}"),
        }
    }
}

/// One static record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRecord {
    pub owner: NameKey,
    pub ttl: u32,
    pub data: StaticData,
}

/// The records of one type at one name, pre-encoded.
#[derive(Debug, Clone)]
pub struct RrSet {
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<Vec<u8>>,
}

/// An allowed transfer source: an address or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A hosted zone.
#[derive(Debug)]
pub struct Zone {
    pub apex: NameKey,
    /// SOA MNAME and RNAME in wire form, the start of the SOA RDATA.
    soa_names: Vec<u8>,
    pub mname: NameKey,
    pub rname: NameKey,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
    pub soa_ttl: u32,
    /// TTL of the CERT records.
    pub ttl: u32,
    /// Static records in configuration order (zone files, transfers).
    pub records: Vec<StaticRecord>,
    /// The same, by name and type, pre-encoded (answers).
    by_name: HashMap<NameKey, Vec<RrSet>>,
    /// Names between the apex and a static name that hold nothing themselves.
    empty_non_terminals: HashSet<NameKey>,
    pub allow_transfer: Vec<Network>,
    pub also_notify: Vec<SocketAddr>,
    /// The policy zone: names below the apex are policy lookups.
    pub policy: bool,
}

impl Zone {
    /// Builds a zone from its configuration. `default_ip` answers for the
    /// hosts `ns` and `ldap` when the zone was derived, not configured.
    pub fn from_config(
        config: &ZoneConfig,
        dns: &DnsConfig,
        default_hosts: Option<IpAddr>,
    ) -> Result<Zone, DnsError> {
        let bad = |what: &str| DnsError::Zone(format!("zone {:?}: {what}", config.name));
        let apex = NameKey::parse_dotted(&config.name)
            .filter(|k| k.label_count() > 0)
            .ok_or_else(|| bad("the name is not a domain name"))?;
        let name = |text: &str| -> Result<NameKey, DnsError> {
            resolve(&apex, text).ok_or_else(|| bad(&format!("{text:?} is not a name")))
        };
        let ns: Vec<NameKey> = config
            .ns
            .iter()
            .map(|n| name(n))
            .collect::<Result<_, _>>()?;
        if ns.is_empty() {
            return Err(bad("needs at least one name server (ns)"));
        }
        let mname = if config.mname.is_empty() {
            ns[0].clone()
        } else {
            name(&config.mname)?
        };
        let rname = name(&config.rname)?;
        let mut records = Vec::new();
        for n in &ns {
            records.push(StaticRecord {
                owner: apex.clone(),
                ttl: config.soa_ttl,
                data: StaticData::Ns(n.clone()),
            });
        }
        let mut hosts = config.hosts.clone();
        if let Some(ip) = default_hosts {
            for host in ["ns", "ldap"] {
                let mut h = crate::config::HostConfig {
                    name: host.into(),
                    ..Default::default()
                };
                match ip {
                    IpAddr::V4(v4) => h.a.push(v4),
                    IpAddr::V6(v6) => h.aaaa.push(v6),
                }
                hosts.push(h);
            }
        }
        for host in &hosts {
            let owner = name(&host.name)?;
            if !owner.is_within(apex.as_bytes()) {
                return Err(bad(&format!("host {:?} is outside the zone", host.name)));
            }
            for ip in &host.a {
                records.push(StaticRecord {
                    owner: owner.clone(),
                    ttl: config.ttl,
                    data: StaticData::A(*ip),
                });
            }
            for ip in &host.aaaa {
                records.push(StaticRecord {
                    owner: owner.clone(),
                    ttl: config.ttl,
                    data: StaticData::Aaaa(*ip),
                });
            }
        }
        if !config.ldap_target.is_empty() {
            let target = name(&config.ldap_target)?;
            for (service, port) in [("_ldap", dns.ldap_port), ("_ldaps", dns.ldaps_port)] {
                if port == 0 {
                    continue;
                }
                let owner = apex
                    .prepend([service.as_bytes(), b"_tcp"])
                    .ok_or_else(|| bad("the name is too long for SRV records"))?;
                records.push(StaticRecord {
                    owner,
                    ttl: config.ttl,
                    data: StaticData::Srv {
                        priority: 0,
                        weight: 0,
                        port,
                        target: target.clone(),
                    },
                });
            }
        }
        let allow_transfer = config
            .allow_transfer
            .iter()
            .map(|t| {
                Network::parse(t).ok_or_else(|| bad(&format!("{t:?} is not an address or network")))
            })
            .collect::<Result<_, _>>()?;

        let mut by_name: HashMap<NameKey, Vec<RrSet>> = HashMap::new();
        let mut seen = HashSet::new();
        for r in &records {
            let rdata = r.data.wire();
            // An RRset holds each record once (RFC 2181 §5).
            if !seen.insert((r.owner.clone(), r.data.rtype(), rdata.clone())) {
                continue;
            }
            let sets = by_name.entry(r.owner.clone()).or_default();
            match sets.iter_mut().find(|s| s.rtype == r.data.rtype()) {
                Some(set) => set.rdata.push(rdata),
                None => sets.push(RrSet {
                    rtype: r.data.rtype(),
                    ttl: r.ttl,
                    rdata: vec![rdata],
                }),
            }
        }
        let mut empty_non_terminals = HashSet::new();
        for owner in by_name.keys() {
            let labels: Vec<&[u8]> = owner.labels().collect();
            for skip in 1..labels.len() {
                let Some(ancestor) = NameKey::from_labels(labels[skip..].iter().copied()) else {
                    continue;
                };
                if !ancestor.is_within(apex.as_bytes()) || ancestor == apex {
                    break;
                }
                if !by_name.contains_key(&ancestor) {
                    empty_non_terminals.insert(ancestor);
                }
            }
        }
        let mut soa_names = wire::name_wire(mname.as_bytes());
        soa_names.extend_from_slice(&wire::name_wire(rname.as_bytes()));
        Ok(Zone {
            apex,
            soa_names,
            mname,
            rname,
            refresh: config.refresh,
            retry: config.retry,
            expire: config.expire,
            minimum: config.minimum,
            soa_ttl: config.soa_ttl,
            ttl: config.ttl,
            records,
            by_name,
            empty_non_terminals,
            allow_transfer,
            also_notify: config.also_notify.clone(),
            policy: false,
        })
    }

    /// The SOA RDATA with `serial`, in parts for [`wire::Builder`].
    pub fn soa_rdata(&self, serial: u32) -> (&[u8], [u8; 20]) {
        let mut numbers = [0u8; 20];
        for (i, n) in [serial, self.refresh, self.retry, self.expire, self.minimum]
            .iter()
            .enumerate()
        {
            numbers[4 * i..4 * i + 4].copy_from_slice(&n.to_be_bytes());
        }
        (&self.soa_names, numbers)
    }

    /// TTL for the SOA in a negative answer (RFC 2308 §5).
    pub fn negative_ttl(&self) -> u32 {
        self.soa_ttl.min(self.minimum)
    }

    /// The static RRsets at `name` (key form).
    pub fn static_sets(&self, name: &[u8]) -> &[RrSet] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `name` exists through static data (records or below them).
    pub fn static_name_exists(&self, name: &[u8]) -> bool {
        self.by_name.contains_key(name) || self.empty_non_terminals.contains(name)
    }

    /// Whether `ip` may transfer this zone.
    pub fn may_transfer(&self, ip: IpAddr) -> bool {
        self.allow_transfer.iter().any(|n| n.contains(ip))
    }
}

/// A name from configuration: absolute with a trailing dot, `@` for the
/// apex, otherwise relative to the apex.
fn resolve(apex: &NameKey, text: &str) -> Option<NameKey> {
    let text = text.trim();
    if text == "@" {
        return Some(apex.clone());
    }
    if text.ends_with('.') {
        return NameKey::parse_dotted(text).filter(|k| k.label_count() > 0);
    }
    let relative = NameKey::parse_dotted(text).filter(|k| k.label_count() > 0)?;
    apex.prepend(relative.labels())
}

/// All hosted zones, found by the longest matching suffix.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: HashMap<NameKey, Arc<Zone>>,
}

impl ZoneSet {
    /// The zones configured, or derived from `organisations` when none are
    /// and `dns.zones_from_organisations` is on.
    pub fn build(config: &DnsConfig, organisations: &[Organisation]) -> Result<ZoneSet, DnsError> {
        let mut zones = HashMap::new();
        if !config.zones.is_empty() {
            for z in &config.zones {
                let zone = Zone::from_config(z, config, None)?;
                if zones.insert(zone.apex.clone(), Arc::new(zone)).is_some() {
                    return Err(DnsError::Zone(format!(
                        "zone {:?} is configured twice",
                        z.name
                    )));
                }
            }
        } else if config.zones_from_organisations {
            let ip = match config.listen.ip() {
                ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                ip => ip,
            };
            let mut domains: Vec<String> = organisations
                .iter()
                .flat_map(|o| o.domains.iter().map(|d| d.to_string()))
                .collect();
            domains.sort();
            domains.dedup();
            for domain in domains {
                let zone_config = ZoneConfig {
                    name: domain,
                    ..ZoneConfig::default()
                };
                let zone = Zone::from_config(&zone_config, config, Some(ip))?;
                zones.insert(zone.apex.clone(), Arc::new(zone));
            }
        }
        if !config.policy_zone.is_empty() {
            let ip = match config.listen.ip() {
                ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                ip => ip,
            };
            let zone_config = ZoneConfig {
                name: config.policy_zone.clone(),
                ttl: config.policy_ttl,
                minimum: config.policy_ttl,
                ldap_target: String::new(),
                ..ZoneConfig::default()
            };
            let mut zone = Zone::from_config(&zone_config, config, Some(ip))?;
            zone.policy = true;
            if zones.insert(zone.apex.clone(), Arc::new(zone)).is_some() {
                return Err(DnsError::Zone(format!(
                    "the policy zone {:?} is also a directory zone",
                    config.policy_zone
                )));
            }
        }
        Ok(ZoneSet { zones })
    }

    /// The most specific hosted zone holding `name`, and where its apex
    /// starts in the name's key.
    pub fn find(&self, name: &wire::Name) -> Option<(&Arc<Zone>, usize)> {
        if self.zones.is_empty() {
            return None;
        }
        name.suffixes()
            .find_map(|(at, suffix)| self.zones.get(suffix).map(|z| (z, at)))
    }

    /// The zone whose apex is `apex` exactly.
    pub fn get(&self, apex: &[u8]) -> Option<&Arc<Zone>> {
        self.zones.get(apex)
    }

    /// The most specific zone holding `name` (a key), for filtering transfers.
    pub fn most_specific(&self, name: &NameKey) -> Option<&Arc<Zone>> {
        let labels: Vec<&[u8]> = name.labels().collect();
        (0..labels.len()).find_map(|skip| {
            NameKey::from_labels(labels[skip..].iter().copied()).and_then(|k| self.zones.get(&k))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = Network::parse("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        let one = Network::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Network::parse("::/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("nonsense").is_none());
    }

    #[test]
    fn zone_from_config_has_srv_and_empty_non_terminals() {
        let dns = DnsConfig::default();
        let config = ZoneConfig {
            name: "Cardio.Example.org".into(),
            ..ZoneConfig::default()
        };
        let zone = Zone::from_config(&config, &dns, Some("127.0.0.1".parse().unwrap())).unwrap();
        let srv = NameKey::parse_dotted("_ldap._tcp.cardio.example.org").unwrap();
        assert_eq!(zone.static_sets(srv.as_bytes())[0].rtype, TYPE_SRV);
        let tcp = NameKey::parse_dotted("_tcp.cardio.example.org").unwrap();
        assert!(zone.static_name_exists(tcp.as_bytes()));
        assert!(zone.static_sets(tcp.as_bytes()).is_empty());
        let ns = NameKey::parse_dotted("ns.cardio.example.org").unwrap();
        assert_eq!(zone.static_sets(ns.as_bytes())[0].rtype, TYPE_A);
        assert_eq!(zone.mname, ns);
        assert_eq!(
            zone.rname,
            NameKey::parse_dotted("hostmaster.cardio.example.org").unwrap()
        );
    }

    #[test]
    fn bad_zone_configs_are_errors() {
        let dns = DnsConfig::default();
        let mut config = ZoneConfig {
            name: "x.org".into(),
            ns: vec![],
            ..ZoneConfig::default()
        };
        assert!(Zone::from_config(&config, &dns, None).is_err());
        config.ns = vec!["ns".into()];
        config.allow_transfer = vec!["not-an-ip".into()];
        assert!(Zone::from_config(&config, &dns, None).is_err());
        config.allow_transfer = vec![];
        config.hosts = vec![crate::config::HostConfig {
            name: "elsewhere.com.".into(),
            ..Default::default()
        }];
        assert!(Zone::from_config(&config, &dns, None).is_err());
    }
}
