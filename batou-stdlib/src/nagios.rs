//! nagios: `ServiceCheck`s of any component, rendered as Nagios service
//! definitions by `NagiosServer` and as NRPE commands by `NRPEHost`
//! (batou.lib.nagios).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::nagios::ServiceCheck;
//!
//! #[component]
//! pub struct Web;
//!
//! impl Component for Web {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(
//!             ServiceCheck::new("http")
//!                 .command("check_http")
//!                 .args("-H localhost -u /login.html")
//!                 .depends_on("localhost", "Supervisor"),
//!         );
//!         // Run on the host through NRPE:
//!         cx.add(ServiceCheck::new("Disk space").nrpe(true).command("check_disk").args("-w 10%"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! `NagiosServer` (any host) collects every check of the environment,
//! sorted by host and description, into `nagios-server-<service_user>.cfg`
//! (`nagios-server.cfg` without a service user) in batou's layout;
//! `NRPEHost` collects the NRPE checks of its own host into `path`
//! (default `/etc/nagios/nrpe/local/<service_user>.cfg`).

use crate::file::File;
use batou::prelude::*;

/// One check as the collectors receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The host it belongs to.
    pub host: String,
    /// The service description (`,` replaced by `_`).
    pub description: String,
    /// `command!args`, or `check_nrpe!name`.
    pub check_command: String,
    /// `servicegroups`.
    pub servicegroups: String,
    /// `contact_groups`, if any.
    pub contact_groups: Option<String>,
    /// `notes_url`, if any.
    pub notes_url: Option<String>,
    /// `(host, service description)` this check depends on.
    pub depend_on: Vec<(String, String)>,
    /// For NRPE checks: the command's name and its command line.
    pub nrpe: Option<(String, String)>,
}

/// The hook key: every `ServiceCheck` provides its [`Check`] under it.
pub const SERVICES: Resource<Check> = Resource::new("batou.lib.nagios:Service");

/// A Nagios service check (direct, or through NRPE with `nrpe = true`).
#[component(namevar = description)]
#[derive(Debug)]
pub struct ServiceCheck {
    /// The service description.
    description: String,
    /// The check command (for NRPE: the plugin's path).
    #[attribute]
    command: String,
    /// Its arguments.
    #[attribute(default = "")]
    args: String,
    /// `notes_url`.
    #[attribute(default = "")]
    notes_url: String,
    /// `servicegroups` (default `direct`, or `nrpe` for NRPE checks).
    #[attribute]
    servicegroups: Option<String>,
    /// `contact_groups`, comma-separated.
    #[attribute]
    contact_groups: Option<String>,
    /// Run on the host through NRPE.
    #[attribute(default = false)]
    nrpe: bool,
    /// The NRPE command name (default: the description, lowercased, `_`
    /// for spaces).
    #[attribute]
    name: Option<String>,
    depend_on: Vec<(String, String)>,
}

impl ServiceCheck {
    /// This check depends on `description` of `host` (a
    /// `servicedependency`).
    pub fn depends_on(mut self, host: impl Into<String>, description: impl Into<String>) -> Self {
        self.depend_on.push((host.into(), description.into()));
        self
    }
}

impl Component for ServiceCheck {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        // "," is not safe in business processes (batou).
        let description = self.description.replace(',', "_");
        if description.contains('\n') || self.command.contains('\n') || self.args.contains('\n') {
            return Err(Error::usage(format!(
                "ServiceCheck({description}): values must be one line"
            )));
        }
        let nrpe = self.nrpe.then(|| {
            let name = self
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| description.to_lowercase().replace(' ', "_"));
            (name, format!("{} {}", self.command, self.args))
        });
        let check_command = match &nrpe {
            Some((name, _)) => format!("check_nrpe!{name}"),
            None if self.args.is_empty() => self.command.clone(),
            None => format!("{}!{}", self.command, self.args),
        };
        let default_groups = if self.nrpe { "nrpe" } else { "direct" };
        let check = Check {
            host: cx.host_name().to_string(),
            description,
            check_command,
            servicegroups: self
                .servicegroups
                .clone()
                .unwrap_or_else(|| default_groups.to_string()),
            contact_groups: self.contact_groups.clone().filter(|c| !c.is_empty()),
            notes_url: Some(self.notes_url.clone()).filter(|n| !n.is_empty()),
            depend_on: self.depend_on.clone(),
            nrpe,
        };
        cx.provide(&SERVICES, check)
    }
}

/// The Nagios service definitions (batou's `nagios.cfg` template).
fn render_server(services: &[Check], static_text: &str) -> String {
    let mut text = String::from("# Generated from template; don't edit manually!\n");
    for s in services {
        text.push_str(&format!(
            "\n#\n# {d}\n#\ndefine service {{\n    use         generic-service\n    host_name   {h}\n    \
             service_description {d}\n    check_command {c}\n    servicegroups {g}\n",
            d = s.description,
            h = s.host,
            c = s.check_command,
            g = s.servicegroups
        ));
        if let Some(groups) = &s.contact_groups {
            text.push_str(&format!("    contact_groups {groups}\n"));
        }
        if let Some(url) = &s.notes_url {
            text.push_str(&format!("    notes_url {url}\n"));
        }
        text.push_str("}\n");
        for (host, description) in &s.depend_on {
            text.push_str(&format!(
                "\ndefine servicedependency {{\n    use generic-servicedependency\n    host_name {host}\n    \
                 dependent_host_name {h}\n    service_description {description}\n    \
                 dependent_service_description {d}\n}}\n",
                h = s.host,
                d = s.description
            ));
        }
    }
    text.push('\n');
    text.push_str(static_text);
    text
}

/// NRPE commands (batou's `nrpe.cfg` template).
fn render_nrpe(services: &[Check]) -> String {
    let mut text = String::from("# Generated from template; don't edit manually!\n");
    for (name, command) in services.iter().filter_map(|s| s.nrpe.as_ref()) {
        text.push_str(&format!("command[{name}]={command}\n"));
    }
    text
}

/// The service definitions of every check of the environment.
#[component]
#[derive(Debug)]
pub struct NagiosServer {
    /// Appended to the generated file.
    #[attribute(default = "")]
    r#static: String,
}

impl Component for NagiosServer {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        let mut services = cx.require(&SERVICES)?;
        services.sort_by(|a, b| (&a.host, &a.description).cmp(&(&b.host, &b.description)));
        let name = match &cx.host().service_user {
            Some(user) => format!("nagios-server-{user}.cfg"),
            None => "nagios-server.cfg".to_string(),
        };
        cx.add(
            File::new(name)
                .content(render_server(&services, &self.r#static))
                .mode("rw-r--r--"),
        );
        Ok(())
    }
}

/// The NRPE commands of this host's checks.
#[component]
#[derive(Debug)]
pub struct NRPEHost {
    /// Where the NRPE configuration goes (default
    /// `/etc/nagios/nrpe/local/<service_user>.cfg`).
    #[attribute]
    path: Option<String>,
}

impl Component for NRPEHost {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        let host = cx.host_name().to_string();
        let mut services: Vec<Check> = cx
            .require_with(&SERVICES, RequireOptions::new().on_host(host))?
            .into_iter()
            .filter(|s| s.nrpe.is_some())
            .collect();
        services.sort_by(|a, b| a.nrpe.cmp(&b.nrpe));
        let path = match self.path.clone().filter(|p| !p.is_empty()) {
            Some(p) => p,
            None => format!(
                "/etc/nagios/nrpe/local/{}.cfg",
                cx.host()
                    .service_user
                    .clone()
                    .unwrap_or_else(|| "batou".into())
            ),
        };
        cx.add(
            File::new(path)
                .content(render_nrpe(&services))
                .mode("rw-r--r--"),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Check {
        Check {
            host: "localhost".into(),
            description: "http".into(),
            check_command: "http!-H localhost -u /login.html".into(),
            servicegroups: "direct".into(),
            contact_groups: None,
            notes_url: None,
            depend_on: vec![("localhost".into(), "Supervisor".into())],
            nrpe: None,
        }
    }

    #[test]
    fn the_server_file_is_batous() {
        // The expectation of batou's own test_server_template.
        assert_eq!(
            render_server(&[http()], ""),
            "# Generated from template; don't edit manually!\n\n#\n# http\n#\ndefine service {\n    \
             use         generic-service\n    host_name   localhost\n    service_description http\n    \
             check_command http!-H localhost -u /login.html\n    servicegroups direct\n}\n\n\
             define servicedependency {\n    use generic-servicedependency\n    host_name localhost\n    \
             dependent_host_name localhost\n    service_description Supervisor\n    \
             dependent_service_description http\n}\n\n"
        );
    }

    #[test]
    fn nrpe_commands() {
        let mut disk = http();
        disk.nrpe = Some(("disk_space".into(), "check_disk -w 10%".into()));
        assert_eq!(
            render_nrpe(&[http(), disk]),
            "# Generated from template; don't edit manually!\ncommand[disk_space]=check_disk -w 10%\n"
        );
    }
}
