//! Multi-host models deployed through local agents (one per host): the
//! load balancer of the batou docs, dependency order, `-j` parallelism
//! within a host, ignored hosts and components, `-c` without connecting.

use batou_tests::*;
use std::time::Instant;

const COMPONENTS: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;

/// Addresses of the application servers.
pub const APPLICATION: Resource<Address> = Resource::new("application");
/// Roots that finished their slow work.
pub const SLEPT: Resource<String> = Resource::new("slept");

#[component]
pub struct App {
    #[attribute(default = 8080)]
    port: u16,
}

impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let me = cx.address(&format!("{}:{}", cx.host().fqdn, self.port))?;
        cx.provide(&APPLICATION, me)?;
        cx.add(File::new("app.conf").content("port={{ component.port }}\n"));
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        ensure!(cx.workdir().join("stamp").exists());
        Ok(())
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(cx.workdir().join("stamp"), format!("{:?}", std::time::SystemTime::now()))?;
        Ok(())
    }
}

#[component]
pub struct Balancer {}

impl Component for Balancer {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let backends = cx.require(&APPLICATION)?;
        let mut text = String::from("backend app\n");
        for b in &backends {
            let ip = b.listen()?.map(|l| l.host.clone()).unwrap_or_default();
            text.push_str(&format!("    server {b} # {ip}\n"));
        }
        cx.add(File::new("haproxy.cfg").content(text));
        Ok(())
    }
    fn verify(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        // The providers finished before this root started (local "hosts"
        // share the project directory).
        let stamp = cx.project_root().join("work/app/stamp");
        if !stamp.exists() {
            return Err(batou::Error::usage("the balancer started before the apps finished"));
        }
        Ok(())
    }
}

macro_rules! sleeper {
    ($name:ident) => {
        #[component]
        pub struct $name {}
        impl Component for $name {
            fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
                cx.provide(&SLEPT, cx.root_name().to_string())
            }
            fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
                Err(batou::Error::update_needed("always"))
            }
            fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
                let start = std::time::SystemTime::now();
                std::thread::sleep(std::time::Duration::from_millis(1000));
                let end = std::time::SystemTime::now();
                let ms = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
                std::fs::write(cx.workdir().join("times"), format!("{} {}", ms(start), ms(end)))?;
                Ok(())
            }
        }
    };
}
macro_rules! failing {
    ($name:ident) => {
        #[component]
        pub struct $name {}
        impl Component for $name {
            fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
                cx.provide(&SLEPT, cx.root_name().to_string())
            }
            fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
                Err(batou::Error::update_needed("always"))
            }
            fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
                std::thread::sleep(std::time::Duration::from_millis(300));
                cx.cmd(&format!("echo {} broke; exit 4", cx.root_name()))?;
                Ok(())
            }
        }
    };
}
failing!(Fail1);
failing!(Fail2);
sleeper!(Sleep1);
sleeper!(Sleep2);
sleeper!(Sleep3);
sleeper!(Sleep4);

#[component]
pub struct After {}

impl Component for After {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let slept = cx.require(&SLEPT)?;
        cx.log(format!("after {}", slept.join(",")));
        Ok(())
    }
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        std::fs::write(cx.workdir().join("start"), ms.to_string())?;
        Ok(())
    }
}
"##;

fn project() -> Project {
    let p = Project::generate("multihost");
    p.write("components/tick/component.rs", COMPONENTS);
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlb = balancer\nweb1 = app\nweb2 = app\n\n[resolver]\nweb1 = 10.0.0.1\nweb2 = 10.0.0.2 fd00::2\n",
    );
    p.write(
        "environments/parallel/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = after, sleep1, sleep2, sleep3, sleep4\n",
    );
    p.write(
        "environments/failing/environment.cfg",
        "[environment]\nconnect_method = local\njobs = 2\n\n[hosts]\nlocalhost = fail1, fail2, after\n",
    );
    p.write(
        "environments/ignores/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nweb1 = app, !balancer\n!web2 = app\n\n[resolver]\nweb1 = 10.0.0.1\nweb2 = 10.0.0.2\n",
    );
    p.write(
        "environments/remote/environment.cfg",
        "[environment]\nconnect_method = ssh\nhost_domain = example.invalid\n\n[hosts]\nlb = balancer\nweb1 = app\nweb2 = app\n\n[resolver]\nweb1.example.invalid = 192.0.2.1\nweb2.example.invalid = 192.0.2.2\n",
    );
    p.build_ok();
    p
}

#[test]
fn load_balancer_deploys_after_its_backends() {
    let p = project();
    let out = p.batou(&["deploy", "-j", "3", "local"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert_eq!(
        p.read("work/balancer/haproxy.cfg"),
        "backend app\n    server web1:8080 # 10.0.0.1\n    server web2:8080 # 10.0.0.2\n"
    );
    let lines: Vec<&str> = text.lines().collect();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| *l == needle)
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"))
    };
    for h in ["lb", "web1", "web2"] {
        pos(&format!(
            "🌐 {h}: Connecting via local ({}/3)",
            ["lb", "web1", "web2"].iter().position(|x| *x == h).unwrap() + 1
        ));
    }
    let lb = pos("⚪ lb: Scheduling component balancer ...");
    // Both providers are scheduled together (-j 3), before the consumer.
    assert!(pos("⚪ web1: Scheduling component app ...") < lb);
    assert!(pos("⚪ web2: Scheduling component app ...") < lb);
    // (The balancer's verify fails unless the apps finished before it.)

    let again = p.batou(&["deploy", "-j", "3", "local"]);
    assert!(again.status.success());
    assert!(!stdout(&again).contains("🚀"), "{}", stdout(&again));
}

#[test]
fn jobs_run_roots_of_one_host_in_parallel_but_never_before_their_providers() {
    let p = project();
    let started = Instant::now();
    let out = p.batou(&["deploy", "-j", "4", "parallel"]);
    let parallel = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stdout(&out));
    let times: Vec<(u128, u128)> = (1..=4)
        .map(|i| {
            let t = p.read(&format!("work/sleep{i}/times"));
            let (a, b) = t.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    let after: u128 = p.read("work/after/start").parse().unwrap();
    // Four 1-second roots overlap...
    let first_end = times.iter().map(|t| t.1).min().unwrap();
    let last_start = times.iter().map(|t| t.0).max().unwrap();
    assert!(
        last_start < first_end,
        "the sleepers did not overlap: {times:?}"
    );
    // ...and the consumer starts after all of them.
    assert!(
        times.iter().all(|t| t.1 <= after),
        "after started early: {times:?} {after}"
    );

    let started = Instant::now();
    let out = p.batou(&["deploy", "-j", "1", "parallel"]);
    let sequential = started.elapsed().as_secs_f64();
    assert!(out.status.success());
    assert!(sequential >= 4.0, "sequential took {sequential:.2}s");
    assert!(
        parallel < sequential - 2.0,
        "-j 4 took {parallel:.2}s, -j 1 {sequential:.2}s"
    );
}

#[test]
fn the_first_failure_stops_new_work_and_every_failure_is_reported() {
    let p = project();
    let out = p.batou(&["deploy", "failing"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // Both ran at once (jobs = 2 from the environment), both are reported.
    assert!(text.contains("ERROR: echo fail1 broke; exit 4"), "{text}");
    assert!(text.contains("ERROR: echo fail2 broke; exit 4"), "{text}");
    assert_eq!(text.matches("    Return code: 4").count(), 2, "{text}");
    // The root that depends on them never started.
    assert!(!text.contains("Scheduling component after"), "{text}");
    assert!(!p.path.join("work/after/start").exists());
    assert!(text.contains("DEPLOYMENT FAILED (during deploy)"), "{text}");
}

#[test]
fn ignored_hosts_and_components_are_skipped_but_configured() {
    let p = project();
    let out = p.batou(&["deploy", "ignores"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("⏭️ web2: Connection ignored (2/2)"), "{text}");
    assert!(
        text.contains("⏭️ web1: Skipping component balancer ... (Component ignored)"),
        "{text}"
    );
    assert!(
        text.contains("⏭️ web2: Skipping component app ... (Host ignored)"),
        "{text}"
    );
    assert!(
        text.contains("⚪ web1: Scheduling component app ..."),
        "{text}"
    );
    assert!(!p.path.join("work/balancer").exists());
}

#[test]
fn unresolvable_addresses_fail_the_check() {
    let p = project();
    p.write(
        "environments/unresolved/environment.cfg",
        "[environment]\nconnect_method = local\nhost_domain = example.invalid\n[hosts]\nweb1 = app\n",
    );
    let out = p.batou(&["deploy", "-c", "unresolved"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "ERROR: Error while resolving hostname: web1.example.invalid has no IPv4 address"
        ),
        "{text}"
    );
    assert!(
        text.contains("     Conversion: Address('web1.example.invalid:8080')"),
        "{text}"
    );
}

#[test]
fn consistency_check_of_remote_hosts_opens_no_connection() {
    let p = project();
    let out = p.batou(&["deploy", "-c", "remote"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("CONSISTENCY CHECK FINISHED"), "{text}");
    assert!(!text.contains("🌐"), "{text}");
}
