//! `[provisioner:NAME]` sections and the `provision-*` keys of hosts,
//! typed as batou reads them.
//!
//! batou itself does not create machines. Making them is an extension
//! point: a library registers a [`Provisioning`] for a method, and
//! `deploy` (and `-P`; not `-c` or `-L`) calls it for every host of that
//! method before connecting. Without one, a provisioned host must exist
//! (made by batou's `fc-devhost` provisioning, or by hand) and a warning
//! says so. What the settings mean for the deployment is honoured:
//! `provision-aliases` become [`Host::aliases`](crate::environment::Host)
//! (`{{ host.aliases.web }}` in templates), and `hostmap.json`, the names
//! batou's provisioner gave hosts with `provision-dynamic-hostname`, maps
//! a host's name to the machine's.
//!
//! ```
//! use batou::provision::{aliases, ProvisionMethod};
//! let m: ProvisionMethod = "fc-nixos-dev-vm".parse().unwrap();
//! assert_eq!(m.to_string(), "fc-nixos-dev-vm");
//! let a = aliases("my\n  api", "dev1", "largo.fcdev.fcio.net");
//! assert_eq!(a["api"], "api.dev1.largo.fcdev.fcio.net");
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::settings::ProvisionMethod;

/// One `[provisioner:NAME]` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provisioner {
    /// The section's name (`default` applies to hosts without a
    /// `provisioner` key).
    pub name: String,
    /// `method`.
    pub method: ProvisionMethod,
    /// `host`: the machine that runs the devhosts (aliases are below it).
    pub host: String,
    /// `memory` (VMs).
    pub memory: Option<String>,
    /// `cores` (VMs).
    pub cores: Option<u32>,
    /// `disk_size` (VMs).
    pub disk_size: Option<String>,
    /// `update_channel` (default true).
    pub update_channel: bool,
    /// Where the image comes from.
    pub image: Option<ImageSource>,
}

/// A VM's image: a release (URL of its JSON description), a Hydra
/// evaluation, or a channel URL (containers).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum ImageSource {
    /// `release = URL`.
    Release(String),
    /// `hydra-eval = ID`.
    HydraEval(String),
    /// `channel = URL`.
    Channel(String),
}

/// The keys of a provisioner section.
pub const KEYS: &[&str] = &[
    "method",
    "host",
    "memory",
    "cores",
    "disk_size",
    "update_channel",
    "release",
    "hydra-eval",
    "channel",
];

/// What is wrong with one key of a section: the key, its line, why.
pub type KeyError = (String, usize, String);

impl Provisioner {
    /// Reads a section's `(key, value, line)` entries; every problem with
    /// the key it is about (`""` and the section's line for missing keys).
    pub fn from_entries(
        name: &str,
        section_line: usize,
        entries: &[(&str, &str, usize)],
    ) -> Result<Provisioner, Vec<KeyError>> {
        let mut errors: Vec<KeyError> = Vec::new();
        let get = |k: &str| entries.iter().find(|(key, _, _)| *key == k);
        let missing = |k: &str, why: &str, errors: &mut Vec<KeyError>| {
            errors.push((k.to_string(), section_line, why.to_string()));
        };
        let method = match get("method") {
            Some((_, v, line)) => match v.parse::<ProvisionMethod>() {
                Ok(m) => Some(m),
                Err(why) => {
                    errors.push(("method".into(), *line, why));
                    None
                }
            },
            None => {
                missing(
                    "method",
                    "missing (e.g. method = fc-nixos-dev-vm)",
                    &mut errors,
                );
                None
            }
        };
        let host = get("host").map(|(_, v, _)| v.to_string());
        if host.is_none() {
            missing(
                "host",
                "missing: the machine that runs the devhosts",
                &mut errors,
            );
        }
        let cores = match get("cores") {
            Some((_, v, line)) => match v.parse::<u32>() {
                Ok(c) => Some(c),
                Err(_) => {
                    errors.push(("cores".into(), *line, "expected a whole number".into()));
                    None
                }
            },
            None => None,
        };
        let update_channel = match get("update_channel") {
            Some((_, v, line)) => match <bool as crate::component::ConfigValue>::from_config(v) {
                Ok(b) => b,
                Err(_) => {
                    errors.push((
                        "update_channel".into(),
                        *line,
                        "expected true or false".into(),
                    ));
                    true
                }
            },
            None => true,
        };
        let image = match (get("release"), get("hydra-eval"), get("channel")) {
            (Some((_, v, _)), _, _) => Some(ImageSource::Release(v.to_string())),
            (None, Some((_, v, _)), _) => Some(ImageSource::HydraEval(v.to_string())),
            (None, None, Some((_, v, _))) => Some(ImageSource::Channel(v.to_string())),
            _ => None,
        };
        if method == Some(ProvisionMethod::FcNixosDevVm) {
            for key in ["memory", "cores"] {
                if get(key).is_none() {
                    missing(
                        key,
                        "missing (fc-nixos-dev-vm needs memory and cores)",
                        &mut errors,
                    );
                }
            }
            if !matches!(
                image,
                Some(ImageSource::Release(_) | ImageSource::HydraEval(_))
            ) {
                missing(
                    "release",
                    "either `release` or `hydra-eval` must be set for fc-nixos-dev-vm",
                    &mut errors,
                );
            }
        }
        match (method, host) {
            (Some(method), Some(host)) if errors.is_empty() => Ok(Provisioner {
                name: name.to_string(),
                method,
                host,
                memory: get("memory").map(|(_, v, _)| v.to_string()),
                cores,
                disk_size: get("disk_size").map(|(_, v, _)| v.to_string()),
                update_channel,
                image,
            }),
            _ => Err(errors),
        }
    }
}

/// Makes or updates the machine of a provisioned host, for one
/// [`ProvisionMethod`]: registered by a library with
/// `inventory::submit!`, called by `deploy` (and `-P`) before it connects
/// to a host whose provisioner has that method. An `Err` fails the
/// deployment with its message before any host is deployed to.
///
/// ```
/// use batou::provision::{ProvisionMethod, Provisioning, Request};
///
/// fn ensure_container(request: &Request<'_>) -> Result<(), String> {
///     // For example: ssh to request.provisioner.host and run the tool
///     // that creates request.host's container (again if request.rebuild).
///     if request.host.is_empty() {
///         return Err("a host needs a name".into());
///     }
///     Ok(())
/// }
///
/// batou::__private::inventory::submit! {
///     Provisioning {
///         method: ProvisionMethod::FcNixosDevContainer,
///         provision: ensure_container,
///     }
/// }
///
/// assert!(batou::provision::registered(ProvisionMethod::FcNixosDevContainer).is_some());
/// ```
#[derive(Debug)]
pub struct Provisioning {
    /// The method it provisions.
    pub method: ProvisionMethod,
    /// Makes the machine ready for `request.host`.
    pub provision: fn(&Request<'_>) -> Result<(), String>,
}

inventory::collect!(Provisioning);

/// What a [`Provisioning`] is asked to make.
#[derive(Debug)]
pub struct Request<'a> {
    /// The host's name in environment.cfg.
    pub host: &'a str,
    /// Its `provision-aliases` (name → full name).
    pub aliases: &'a BTreeMap<String, String>,
    /// The host's provisioner section.
    pub provisioner: &'a Provisioner,
    /// `--provision-rebuild`: make the machine again from scratch.
    pub rebuild: bool,
    /// The deployment's project directory.
    pub project_root: &'a std::path::Path,
    /// The environment's name.
    pub environment: &'a str,
}

/// The registered provisioning of a method, if a library has one.
pub fn registered(method: ProvisionMethod) -> Option<&'static Provisioning> {
    inventory::iter::<Provisioning>
        .into_iter()
        .find(|p| p.method == method)
}

/// The hosts to deploy to whose provisioner has a registered
/// [`Provisioning`], with their provisioner.
pub fn provisionable(
    env: &crate::environment::Environment,
) -> Vec<(
    &crate::environment::Host,
    &Provisioner,
    &'static Provisioning,
)> {
    env.hosts
        .iter()
        .filter(|h| !h.ignore)
        .filter_map(|h| {
            let provisioner = env.provisioners.get(h.provisioner.as_deref()?)?;
            Some((h, provisioner, registered(provisioner.method)?))
        })
        .collect()
}

/// batou's devhost aliases: each whitespace-separated name of
/// `provision-aliases` → `NAME.HOST.TARGET_HOST`.
pub fn aliases(list: &str, host: &str, target_host: &str) -> BTreeMap<String, String> {
    list.split_whitespace()
        .map(|a| (a.to_string(), format!("{a}.{host}.{target_host}")))
        .collect()
}

/// `environments/<env>/hostmap.json`: `{"name in environment.cfg": "real
/// name"}`, as batou's provisioner wrote it; empty when there is none.
pub fn hostmap(
    project_root: &std::path::Path,
    env: &str,
) -> Result<BTreeMap<String, String>, String> {
    let path = project_root
        .join("environments")
        .join(env)
        .join("hostmap.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            format!("environments/{env}/hostmap.json is not a JSON object of names: {e}")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("environments/{env}/hostmap.json: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_needs_its_sizes_and_an_image() {
        let err = Provisioner::from_entries(
            "default",
            3,
            &[("method", "fc-nixos-dev-vm", 4), ("host", "largo", 5)],
        )
        .unwrap_err();
        let keys: Vec<&str> = err.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["memory", "cores", "release"]);
        let p = Provisioner::from_entries(
            "default",
            3,
            &[
                ("method", "fc-nixos-dev-vm", 4),
                ("host", "largo", 5),
                ("memory", "4096", 6),
                ("cores", "2", 7),
                ("hydra-eval", "123", 8),
                ("update_channel", "false", 9),
            ],
        )
        .unwrap();
        assert_eq!(p.cores, Some(2));
        assert!(!p.update_channel);
        assert_eq!(p.image, Some(ImageSource::HydraEval("123".into())));
        let err = Provisioner::from_entries("x", 1, &[("method", "docker", 2), ("host", "h", 3)])
            .unwrap_err();
        assert_eq!(err[0].0, "method");
        assert_eq!(
            err[0].2,
            "expected fc-nixos-dev-vm or fc-nixos-dev-container"
        );
        let err = Provisioner::from_entries(
            "x",
            1,
            &[
                ("method", "fc-nixos-dev-container", 2),
                ("host", "h", 3),
                ("cores", "two", 4),
                ("update_channel", "sometimes", 5),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            [
                (
                    "cores".to_string(),
                    4,
                    "expected a whole number".to_string()
                ),
                (
                    "update_channel".to_string(),
                    5,
                    "expected true or false".to_string()
                ),
            ]
        );
        let err = Provisioner::from_entries("x", 1, &[("host", "h", 3)]).unwrap_err();
        assert_eq!(err[0].2, "missing (e.g. method = fc-nixos-dev-vm)");
        let err = Provisioner::from_entries("x", 1, &[("method", "fc-nixos-dev-container", 2)])
            .unwrap_err();
        assert_eq!(err[0].2, "missing: the machine that runs the devhosts");
    }
}
