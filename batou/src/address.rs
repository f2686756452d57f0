//! Network addresses: [`NetLoc`] (host and port) and [`Address`] (what
//! clients connect to, and the IPv4/IPv6 addresses servers listen on).
//!
//! ```
//! use batou::address::{Address, Family};
//! let a = Address::with_families("127.0.0.1:8080", Family::Required, Family::Disabled).unwrap();
//! assert_eq!(a.to_string(), "127.0.0.1:8080");
//! assert_eq!(a.listen().unwrap().unwrap().to_string(), "127.0.0.1:8080");
//! assert!(a.listen_v6().is_err()); // IPv6 not configured for this address
//!
//! let v6 = Address::with_families("[::1]:53", Family::Disabled, Family::Required).unwrap();
//! assert_eq!(v6.connect.host, "::1");
//! assert_eq!(v6.listen_v6().unwrap().unwrap().to_string(), "[::1]:53");
//! ```
//!
//! Listen addresses are resolved when the address is made, through the
//! environment's `[resolver]` overrides first and then the system resolver.
//! Which families are required comes from `require_v4`/`require_v6` of the
//! environment (`True`, `False`, `optional`) unless given explicitly.

use crate::component::{ConfigValue, ConversionError};
use crate::template::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, RwLock};

/// A host and an optional port. IPv6 hosts print in brackets: `[::1]:80`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct NetLoc {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: Option<u16>,
}

impl NetLoc {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6
    /// address.
    pub fn parse(s: &str) -> Result<NetLoc, ConversionError> {
        let s = s.trim();
        let bad = |why: &str| ConversionError {
            message: format!("not a valid network location {s:?}: {why}"),
            conversion: Some(format!("NetLoc({})", crate::component::py_repr(s))),
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))
        };
        if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ]"))?;
            let port = match after {
                "" => None,
                p => Some(port(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :port after ]"))?,
                )?),
            };
            return Ok(NetLoc {
                host: host.to_string(),
                port,
            });
        }
        if s.matches(':').count() > 1 {
            // A bare IPv6 address has no port.
            return Ok(NetLoc {
                host: s.to_string(),
                port: None,
            });
        }
        match s.split_once(':') {
            Some((h, p)) if !h.is_empty() => Ok(NetLoc {
                host: h.to_string(),
                port: Some(port(p)?),
            }),
            Some(_) => Err(bad("empty host")),
            None if s.is_empty() => Err(bad("empty host")),
            None => Ok(NetLoc {
                host: s.to_string(),
                port: None,
            }),
        }
    }
}

impl std::fmt::Display for NetLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v6 = self.host.contains(':');
        match (self.port, v6) {
            (Some(p), true) => write!(f, "[{}]:{p}", self.host),
            (Some(p), false) => write!(f, "{}:{p}", self.host),
            (None, _) => write!(f, "{}", self.host),
        }
    }
}

impl Object for NetLoc {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "host" => Some(Value::from(self.host.as_str())),
            "port" => Some(self.port.map(Value::from).unwrap_or(Value::from(()))),
            _ => None,
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["host", "port"])
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl ConfigValue for NetLoc {
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        NetLoc::parse(raw)
    }
    fn to_template(&self) -> Value {
        Value::from_object(self.clone())
    }
}

/// Whether an address family must, may or must not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Family {
    /// Must resolve (batou's `True`).
    #[default]
    Required,
    /// Resolved if possible, else `None` (`optional`).
    Optional,
    /// Not used; accessing it is an error (`False`).
    Disabled,
}

impl Family {
    /// Parses `optional` or a value batou reads as a Python literal and
    /// takes its truth: `True`/`False`/`None`, numbers (`1`, `0`, `0.0`),
    /// quoted strings (`''` is false); also `yes`/`no` (which batou's
    /// `literal_eval` would refuse). Case does not matter.
    ///
    /// ```
    /// use batou::address::Family;
    /// assert_eq!(Family::parse("1"), Some(Family::Required));
    /// assert_eq!(Family::parse("None"), Some(Family::Disabled));
    /// assert_eq!(Family::parse("optional"), Some(Family::Optional));
    /// assert_eq!(Family::parse("sometimes"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Family> {
        let word = s.trim().to_ascii_lowercase();
        let truth = match word.as_str() {
            "optional" => return Some(Family::Optional),
            "true" | "yes" => true,
            "false" | "no" | "none" => false,
            quoted
                if quoted.len() >= 2
                    && (quoted.starts_with('\'') && quoted.ends_with('\'')
                        || quoted.starts_with('"') && quoted.ends_with('"')) =>
            {
                quoted.len() > 2
            }
            number => {
                let number = number.replace('_', "");
                if let Ok(i) = number.parse::<i64>() {
                    i != 0
                } else {
                    number.parse::<f64>().ok().filter(|f| f.is_finite())? != 0.0
                }
            }
        };
        Some(if truth {
            Family::Required
        } else {
            Family::Disabled
        })
    }
}

/// The environment's address settings (`require_v4`, `require_v6`,
/// `[resolver]`), set by the model for this process.
#[derive(Debug, Clone, Default)]
pub struct AddressSettings {
    /// Default for IPv4.
    pub v4: Family,
    /// Default for IPv6.
    pub v6: Family,
    /// `[resolver]` overrides: host name → addresses.
    pub resolver: BTreeMap<String, Vec<IpAddr>>,
}

static SETTINGS: RwLock<Option<AddressSettings>> = RwLock::new(None);

/// Sets the address settings of this process (done when a model is made).
pub fn configure(settings: AddressSettings) {
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(settings);
}

fn settings() -> AddressSettings {
    SETTINGS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or(AddressSettings {
            v4: Family::Required,
            v6: Family::Disabled,
            resolver: BTreeMap::new(),
        })
}

/// A service address: `connect` for clients, `listen` (IPv4) and
/// `listen_v6` for servers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    /// What clients connect to.
    pub connect: NetLoc,
    listen: Option<Option<NetLoc>>,
    listen_v6: Option<Option<NetLoc>>,
}

impl Address {
    /// An address with the environment's family settings.
    pub fn new(connect: &str) -> Result<Address, ConversionError> {
        let s = settings();
        Self::resolve(connect, s.v4, s.v6, &s.resolver)
    }

    /// An address with explicit family settings.
    pub fn with_families(
        connect: &str,
        v4: Family,
        v6: Family,
    ) -> Result<Address, ConversionError> {
        Self::resolve(connect, v4, v6, &settings().resolver)
    }

    fn resolve(
        connect: &str,
        v4: Family,
        v6: Family,
        overrides: &BTreeMap<String, Vec<IpAddr>>,
    ) -> Result<Address, ConversionError> {
        let conversion = Some(format!("Address({})", crate::component::py_repr(connect)));
        if v4 == Family::Disabled && v6 == Family::Disabled {
            return Err(ConversionError {
                message:
                    "At least one of `require_v4` or `require_v6` is required. None were selected."
                        .into(),
                conversion,
            });
        }
        let connect = NetLoc::parse(connect)?;
        let Some(port) = connect.port else {
            return Err(ConversionError {
                message: "Need port for service address.".into(),
                conversion,
            });
        };
        // A literal needs no resolution: its own family is what it is
        // (whatever the settings say), the other one is absent unless
        // disabled.
        let literal = match overrides.get(&connect.host) {
            Some(_) => None,
            None => connect.host.parse::<IpAddr>().ok(),
        };
        let candidates: Vec<IpAddr> = match (overrides.get(&connect.host), literal) {
            (Some(ips), _) => ips.clone(),
            (None, Some(ip)) => vec![ip],
            (None, None) => (connect.host.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default(),
        };
        let pick = |family: Family, v6: bool| -> Result<Option<Option<NetLoc>>, ConversionError> {
            let family = match literal {
                Some(ip) if ip.is_ipv6() == v6 => Family::Required,
                Some(_) if family == Family::Required => Family::Optional,
                _ => family,
            };
            if family == Family::Disabled {
                return Ok(None);
            }
            let ip = candidates.iter().find(|ip| ip.is_ipv6() == v6);
            match (ip, family) {
                (Some(ip), _) => Ok(Some(Some(NetLoc {
                    host: ip.to_string(),
                    port: Some(port),
                }))),
                (None, Family::Optional) => Ok(Some(None)),
                (None, _) => Err(ConversionError {
                    message: format!(
                        "Error while resolving hostname: {} has no IPv{} address",
                        connect.host,
                        if v6 { 6 } else { 4 }
                    ),
                    conversion: conversion.clone(),
                }),
            }
        };
        let listen = pick(v4, false)?;
        let listen_v6 = pick(v6, true)?;
        Ok(Address {
            connect,
            listen,
            listen_v6,
        })
    }

    #[track_caller]
    fn family<'a>(
        &'a self,
        which: &'a Option<Option<NetLoc>>,
        kind: u8,
    ) -> crate::Result<Option<&'a NetLoc>> {
        match which {
            Some(loc) => Ok(loc.as_ref()),
            None => Err(crate::Error::usage(format!(
                "Trying to access address family IPv{kind} which is not configured for {self}. \
                 Hint: use `require_v{kind}` (True or optional) for this address."
            ))),
        }
    }

    /// The IPv4 listen address (`None` if optional and not resolvable); an
    /// error if IPv4 is disabled for this address (its `Source:` is the
    /// caller's line).
    #[track_caller]
    pub fn listen(&self) -> crate::Result<Option<&NetLoc>> {
        self.family(&self.listen, 4)
    }

    /// The IPv6 listen address, like [`Self::listen`].
    #[track_caller]
    pub fn listen_v6(&self) -> crate::Result<Option<&NetLoc>> {
        self.family(&self.listen_v6, 6)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.connect.fmt(f)
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Address {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl Object for Address {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let loc = |l: &Option<Option<NetLoc>>| match l {
            Some(Some(n)) => Value::from_object(n.clone()),
            _ => Value::from(()),
        };
        match key.as_str()? {
            "connect" => Some(Value::from_object(self.connect.clone())),
            "listen" => self.listen.as_ref().map(|_| loc(&self.listen)),
            "listen_v6" => self.listen_v6.as_ref().map(|_| loc(&self.listen_v6)),
            _ => None,
        }
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl ConfigValue for Address {
    /// `host:port`, resolved with the environment's settings.
    fn from_config(raw: &str) -> Result<Self, ConversionError> {
        Address::new(raw)
    }
    fn to_template(&self) -> Value {
        Value::from_object(self.clone())
    }
}

impl crate::component::IntoAttribute<Address> for &str {
    fn into_attribute(self) -> Result<Address, ConversionError> {
        Address::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlocs() {
        assert_eq!(
            NetLoc::parse("h:80").unwrap(),
            NetLoc {
                host: "h".into(),
                port: Some(80)
            }
        );
        assert_eq!(
            NetLoc::parse("[::1]:8080").unwrap().to_string(),
            "[::1]:8080"
        );
        assert_eq!(
            NetLoc::parse("::1").unwrap(),
            NetLoc {
                host: "::1".into(),
                port: None
            }
        );
        assert!(NetLoc::parse("h:http").is_err());
        assert!(NetLoc::parse("[::1").is_err());
    }

    #[test]
    fn resolver_overrides_and_families() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "web".to_string(),
            vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()],
        );
        let a = Address::resolve("web:80", Family::Required, Family::Required, &overrides).unwrap();
        assert_eq!(a.listen().unwrap().unwrap().to_string(), "10.0.0.5:80");
        assert_eq!(a.listen_v6().unwrap().unwrap().to_string(), "[fd00::5]:80");

        let only_v4 = BTreeMap::from([("v4only".to_string(), vec!["10.0.0.6".parse().unwrap()])]);
        let b =
            Address::resolve("v4only:80", Family::Required, Family::Optional, &only_v4).unwrap();
        assert_eq!(b.listen_v6().unwrap(), None);
        let err = Address::resolve("v4only:80", Family::Required, Family::Required, &only_v4)
            .unwrap_err();
        assert_eq!(
            err.message,
            "Error while resolving hostname: v4only has no IPv6 address"
        );

        let c = Address::resolve(
            "127.0.0.1:1",
            Family::Required,
            Family::Disabled,
            &BTreeMap::new(),
        )
        .unwrap();
        let (err, line) = (c.listen_v6().unwrap_err(), line!());
        assert_eq!(
            err.location(),
            Some(format!("batou/src/address.rs:{line}").as_str()),
            "the Source: of a usage error is the caller's line"
        );
        let e = err.to_string();
        assert!(
            e.starts_with(
                "Trying to access address family IPv6 which is not configured for 127.0.0.1:1."
            ),
            "{e}"
        );
        assert_eq!(
            Address::resolve("h", Family::Required, Family::Disabled, &BTreeMap::new())
                .unwrap_err()
                .message,
            "Need port for service address."
        );
    }

    #[test]
    fn a_literal_is_taken_as_its_family() {
        let none = BTreeMap::new();
        // The defaults (IPv4 required, IPv6 off) and an IPv6 literal.
        let a = Address::resolve("[::1]:8080", Family::Required, Family::Disabled, &none).unwrap();
        assert_eq!(a.listen_v6().unwrap().unwrap().to_string(), "[::1]:8080");
        assert_eq!(a.listen().unwrap(), None);
        let b =
            Address::resolve("127.0.0.1:80", Family::Required, Family::Required, &none).unwrap();
        assert_eq!(b.listen().unwrap().unwrap().to_string(), "127.0.0.1:80");
        assert_eq!(b.listen_v6().unwrap(), None);
    }

    #[test]
    fn templates_see_connect_and_listen() {
        let t = crate::template::Templates::new();
        let a = Address::resolve(
            "127.0.0.1:8080",
            Family::Required,
            Family::Disabled,
            &BTreeMap::new(),
        )
        .unwrap();
        let ctx = crate::template::map([("a", a.to_template())]);
        let out = t
            .render("x", "{{ a }} {{ a.connect.host }} {{ a.listen.port }}", ctx)
            .unwrap();
        assert_eq!(out, "127.0.0.1:8080 127.0.0.1 8080");
    }
}
