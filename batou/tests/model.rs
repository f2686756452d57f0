//! The multi-host model: typed resources, the configure fixed point,
//! dependency order and the configuration errors (batou's error examples).

use batou::environment::Environment;
use batou::model::{Model, ModelEnv};
use batou::prelude::*;
use batou::report::merge;

pub const APPLICATION: Resource<String> = Resource::new("application");
pub const FIRST: Resource<u32> = Resource::new("first");
pub const SECOND: Resource<u32> = Resource::new("second");
pub const LONELY: Resource<String> = Resource::new("lonely");
pub const MISSING: Resource<String> = Resource::new("missing");
/// Same key as APPLICATION, other type: a conflict found at configure time.
pub const APPLICATION_AS_NUMBER: Resource<u64> = Resource::new("application");

#[component]
pub struct App {}
impl Component for App {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let me = format!("{}:8080", cx.host_name());
        cx.provide(&APPLICATION, me)
    }
}

#[component]
pub struct Balancer {
    backends: Vec<String>,
}
impl Component for Balancer {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        self.backends = cx.require(&APPLICATION)?;
        cx.log(format!("backends: {}", self.backends.join(" ")));
        Ok(())
    }
}

#[component]
pub struct Cycle1 {}
impl Component for Cycle1 {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.provide(&FIRST, 1)?;
        cx.require(&SECOND)?;
        Ok(())
    }
}

#[component]
pub struct Cycle2 {}
impl Component for Cycle2 {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.provide(&SECOND, 2)?;
        cx.require(&FIRST)?;
        Ok(())
    }
}

#[component]
pub struct Lonely {}
impl Component for Lonely {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.provide(&LONELY, "x".to_string())
    }
}

#[component]
pub struct Needy {}
impl Component for Needy {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.require(&MISSING)?;
        Ok(())
    }
}

#[component]
pub struct PickyOne {}
impl Component for PickyOne {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let one: String = cx.require_one(&APPLICATION)?;
        cx.log(one);
        Ok(())
    }
}

#[component]
pub struct OnHost {
    #[attribute(default = "nowhere")]
    target: String,
}
impl Component for OnHost {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.require_with(
            &APPLICATION,
            RequireOptions::new().on_host(self.target.clone()),
        )?;
        Ok(())
    }
}

#[component]
pub struct Reversed {}
impl Component for Reversed {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.require_with(&APPLICATION, RequireOptions::new().reverse())?;
        Ok(())
    }
}

#[component]
pub struct WrongType {}
impl Component for WrongType {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.require(&APPLICATION_AS_NUMBER)?;
        Ok(())
    }
}

pub const RELAYED: Resource<String> = Resource::new("relayed");

#[component]
pub struct Relay {}
impl Component for Relay {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let apps = cx.require(&APPLICATION)?;
        cx.provide(&RELAYED, apps.join(","))
    }
}

#[component]
pub struct Sink {}
impl Component for Sink {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let relayed = cx.require(&RELAYED)?;
        cx.log(format!("sink: {}", relayed.join(" ")));
        Ok(())
    }
}

fn configure(cfg: &str) -> (Model, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("environments/test");
    std::fs::create_dir_all(&env_dir).unwrap();
    std::fs::write(
        env_dir.join("environment.cfg"),
        format!("[environment]\nconnect_method = local\n{cfg}"),
    )
    .unwrap();
    let env = Environment::load(dir.path(), "test").unwrap_or_else(|e| panic!("{:?}", e.0));
    let (model, errors) = Model::configure(ModelEnv::new(dir.path().to_path_buf(), env));
    let mut lines = Vec::new();
    for (report, hosts) in merge(errors) {
        lines.extend(report.lines().into_iter().map(|l| l.text));
        if !hosts.is_empty() {
            lines.push(format!(
                " Affected hosts: {}",
                hosts.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    (model, lines)
}

fn id(model: &Model, host: &str, name: &str) -> usize {
    model
        .roots
        .iter()
        .position(|r| r.host == host && r.name == name)
        .unwrap()
}

#[test]
fn load_balancer_gets_backends_in_order_and_deploys_after_them() {
    // The consumer is listed first and on the first host: the fixed point
    // still gives it both values, sorted by host.
    let (model, errors) = configure("[hosts]\naaa = balancer\nweb2 = app\nweb1 = app\n");
    assert!(errors.is_empty(), "{errors:?}");
    let lb = id(&model, "aaa", "balancer");
    assert_eq!(model.roots[lb].logs, ["backends: web1:8080 web2:8080"]);
    let deps: Vec<_> = model.dependencies[lb]
        .iter()
        .map(|i| model.roots[*i].host.as_str())
        .collect();
    assert_eq!(deps, ["web1", "web2"]);
    assert!(model.dependencies[id(&model, "web1", "app")].is_empty());
}

/// An agent configures only its host's roots and those they read from,
/// transitively (host filters respected), with the same results.
#[test]
fn an_agent_configures_its_roots_and_what_they_read_with_the_same_values() {
    let cfg = "[hosts]\naaa = balancer\nooo = onhost\nrrr = relay\nsss = sink\nweb1 = app\nweb2 = app\nzzz = lonely\n[component:onhost]\ntarget = web1\n";
    let (model, errors) = configure(cfg);
    assert_eq!(
        errors,
        [
            "ERROR: Unused provided resources",
            "    Resource \"lonely\" provided by lonely with value ['x']"
        ]
    );
    let names = |host: &str| -> Vec<String> {
        model
            .roots_for_host(host)
            .into_iter()
            .map(|(h, r)| format!("{h}/{r}"))
            .collect()
    };
    assert_eq!(names("aaa"), ["aaa/balancer", "web1/app", "web2/app"]);
    assert_eq!(names("web1"), ["web1/app"]);
    assert_eq!(names("ooo"), ["ooo/onhost", "web1/app"]);
    assert_eq!(
        names("sss"),
        ["rrr/relay", "sss/sink", "web1/app", "web2/app"]
    );
    assert_eq!(names("zzz"), ["zzz/lonely"]);

    // Configuring only what host sss needs: the same values, no report of
    // what others would have used, the rest unconfigured.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("environments/test")).unwrap();
    std::fs::write(
        dir.path().join("environments/test/environment.cfg"),
        format!("[environment]\nconnect_method = local\n{cfg}"),
    )
    .unwrap();
    let env = Environment::load(dir.path(), "test").unwrap();
    for host in ["sss", "zzz", "ooo"] {
        let only = model.roots_for_host(host);
        // The hosts without such roots come as names only.
        let reduced = Environment {
            hosts: env.hosts_for(&only),
            ..env.clone()
        };
        let full: Vec<&str> = reduced
            .hosts
            .iter()
            .filter(|h| !h.components.is_empty())
            .map(|h| h.name.as_str())
            .collect();
        let mut wanted_hosts: Vec<&str> = only.iter().map(|(h, _)| h.as_str()).collect();
        wanted_hosts.dedup();
        assert_eq!(full, wanted_hosts, "{host}");
        assert_eq!(reduced.hosts.len(), env.hosts.len());
        let (agent, errors) = Model::configure_only(
            ModelEnv::new(dir.path().to_path_buf(), reduced),
            Some(&only),
        );
        assert!(errors.is_empty(), "{host}: {errors:?}");
        for root in &agent.roots {
            let configured = root.node.lock().unwrap().is_some();
            let wanted = only.contains(&(root.host.clone(), root.name.clone()));
            assert_eq!(configured, wanted, "{host}: {}/{}", root.host, root.name);
            if wanted {
                let whole = &model.roots[id(&model, &root.host, &root.name)];
                assert_eq!(root.logs, whole.logs, "{host}: {}", root.name);
            }
        }
        let present = agent
            .roots
            .iter()
            .filter(|r| only.contains(&(r.host.clone(), r.name.clone())))
            .count();
        assert_eq!(present, only.len(), "{host}");
    }
    let sink = id(&model, "sss", "sink");
    assert_eq!(model.roots[sink].logs, ["sink: web1:8080,web2:8080"]);
}

#[test]
fn reverse_flips_the_order() {
    let (model, errors) = configure("[hosts]\na = app\nb = reversed\n");
    assert!(errors.is_empty(), "{errors:?}");
    let app = id(&model, "a", "app");
    let rev = id(&model, "b", "reversed");
    assert!(model.dependencies[app].contains(&rev));
    assert!(model.dependencies[rev].is_empty());
}

#[test]
fn cycles_are_reported_with_the_cycle() {
    let (_, errors) = configure("[hosts]\nlocalhost = cycle1, cycle2\n");
    assert_eq!(
        errors,
        [
            "ERROR: Found dependency cycle",
            "cycle1 depends on",
            "        cycle2",
            "cycle2 depends on",
            "        cycle1",
        ]
    );
}

#[test]
fn unsatisfied_and_unused_resources() {
    let (_, errors) = configure("[hosts]\nlocalhost = needy, lonely\n");
    assert_eq!(
        errors,
        [
            "ERROR: Unused provided resources",
            "    Resource \"lonely\" provided by lonely with value ['x']",
            "ERROR: Unsatisfied resource requirements",
            "    Resource \"missing\" required by needy",
            "ERROR: 1 remaining unconfigured component(s): needy",
        ]
    );
}

#[test]
fn host_filtered_requirements_name_the_host() {
    let (_, errors) = configure("[hosts]\na = app\nb = onhost\n[component:onhost]\ntarget = b\n");
    assert!(
        errors.contains(&"    Resource \"application\" on \"b\" required by onhost".to_string()),
        "{errors:?}"
    );
    // Filtered on "a", the value from a is there: the model converges, and
    // nothing is unused.
    let (model, errors) =
        configure("[hosts]\na = app\nb = onhost\n[component:onhost]\ntarget = a\n");
    assert!(errors.is_empty(), "{errors:?}");
    assert!(model.dependencies[id(&model, "b", "onhost")].contains(&id(&model, "a", "app")));
    // A host that is not in the environment is a usage error.
    let (_, errors) = configure("[hosts]\na = app, onhost\n");
    assert!(
        errors[0].contains("names host \"nowhere\", which is not in the environment"),
        "{errors:?}"
    );
}

#[test]
fn require_one_needs_exactly_one() {
    let (model, errors) = configure("[hosts]\na = app, pickyone\n");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(model.roots[id(&model, "a", "pickyone")].logs, ["a:8080"]);

    let (_, errors) = configure("[hosts]\na = app, pickyone\nb = app\n");
    assert!(
        errors.contains(&"ERROR: pickyone: resource \"application\" has 2 values, require_one expects exactly one".to_string()),
        "{errors:?}"
    );
    assert!(
        errors.contains(&" Affected hosts: a".to_string()),
        "{errors:?}"
    );

    // Never provided: silently retried, then unsatisfied.
    let (_, errors) = configure("[hosts]\na = pickyone\n");
    assert!(
        errors.contains(&"    Resource \"application\" required by pickyone".to_string()),
        "{errors:?}"
    );
}

#[test]
fn two_types_for_one_key_are_an_error_naming_both() {
    let (_, errors) = configure("[hosts]\na = app, wrongtype\n");
    let line = errors
        .iter()
        .find(|l| l.contains("is used with two types"))
        .expect("type conflict reported");
    assert!(
        line.contains("alloc::string::String (at batou/tests/model.rs:"),
        "{line}"
    );
    assert!(line.contains("u64 (at batou/tests/model.rs:"), "{line}");
}

#[component]
pub struct Mapper {}
impl Component for Mapper {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let root = cx.project_root().to_path_buf();
        for p in ["/etc/app.conf", "/srv/www/index.html", "relative"] {
            let mapped = cx.map(p);
            let shown = mapped
                .strip_prefix(&root)
                .map(|r| format!("<project>/{}", r.display()));
            cx.log(shown.unwrap_or_else(|_| mapped.display().to_string()));
        }
        Ok(())
    }
}

#[test]
fn vfs_sandboxes_map_absolute_paths() {
    let (model, errors) = configure("[hosts]\na = mapper\n[vfs]\nsandbox = Developer\n");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        model.roots[0].logs,
        [
            "<project>/work/_/etc/app.conf",
            "<project>/work/_/srv/www/index.html",
            "<project>/work/mapper/relative"
        ]
    );
    let (model, errors) = configure(
        "[hosts]\na = mapper\n[vfs]\nsandbox = Map\n/srv = /tmp/srv\n/srv/www = /var/www\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        model.roots[0].logs,
        [
            "/etc/app.conf",
            "/var/www/index.html",
            "<project>/work/mapper/relative"
        ]
    );
}

#[component]
pub struct Service {
    #[attribute(default = "tick.sh")]
    executable: String,
}
impl Component for Service {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.log(format!("service {}", self.executable));
        Ok(())
    }
}

/// Attached to every Service on hosts whose platform is `debian`.
#[component(platform = "debian", base = Service)]
pub struct DebianService {}
impl Component for DebianService {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let parent = cx
            .parent()
            .map(|p| p.get_attr("executable").unwrap().to_string())
            .unwrap_or_default();
        cx.log(format!("debian unit for {parent} ({})", cx.breadcrumbs()));
        Ok(())
    }
}

#[test]
fn platform_components_attach_to_their_base() {
    let (model, errors) = configure("platform = debian\n[hosts]\na = service\n[host:b]\ncomponents = service\nplatform = nixos\n");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        model.roots[id(&model, "a", "service")].logs,
        [
            "service tick.sh",
            "debian unit for tick.sh (Service > DebianService)"
        ]
    );
    assert_eq!(
        model.roots[id(&model, "b", "service")].logs,
        ["service tick.sh"]
    );
}

/// A cron job as a hook: a sub-component provides itself (its data) for
/// the crontab of the same host.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub timing: String,
    pub command: String,
}
pub const CRONJOB: Resource<Job> = Resource::new("cronjob");

#[component(namevar = command)]
pub struct CronJob {
    command: String,
    #[attribute]
    timing: String,
}
impl Component for CronJob {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.provide(
            &CRONJOB,
            Job {
                timing: self.timing.clone(),
                command: self.command.clone(),
            },
        )
    }
}

#[component(features = ["hourly"])]
pub struct Backup {}
impl Component for Backup {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(CronJob::new("backup.sh").timing("0 3 * * *"));
        if cx.features().iter().any(|f| f == "hourly") {
            cx.add(CronJob::new("backup.sh --incremental").timing("0 * * * *"));
        }
        Ok(())
    }
}

#[component]
pub struct CronTab {}
impl Component for CronTab {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let host = cx.host_name().to_string();
        let jobs = cx.require_with(&CRONJOB, RequireOptions::new().on_host(host))?;
        let alias = cx.host().data.get("alias").cloned().unwrap_or_default();
        for j in jobs {
            cx.log(format!("{alias}: {} {}", j.timing, j.command));
        }
        Ok(())
    }
}

#[test]
fn hooks_features_and_host_data() {
    let (model, errors) = configure(
        "[hosts]\na = backup:hourly, crontab\n[host:b]\ncomponents = backup, crontab\ndata-alias = bee\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        model.roots[id(&model, "a", "crontab")].logs,
        [
            ": 0 3 * * * backup.sh",
            ": 0 * * * * backup.sh --incremental"
        ]
    );
    assert_eq!(
        model.roots[id(&model, "b", "crontab")].logs,
        ["bee: 0 3 * * * backup.sh"]
    );
    // The crontab deploys after the jobs of its own host only.
    let tab_b = id(&model, "b", "crontab");
    assert_eq!(
        model.dependencies[tab_b]
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [id(&model, "b", "backup")]
    );
}

#[component]
pub struct BadOverride {
    #[attribute(default = 1)]
    count: u32,
}
impl Component for BadOverride {}

#[component]
pub struct Misused {}
impl Component for Misused {
    fn configure(&mut self, _cx: &mut Configure) -> batou::Result<()> {
        Err(Error::usage(
            "SyncDirectory requires a source to sync from.",
        ))
    }
}

/// batou's "errors late" example in small: many configuration errors of
/// one model, reported together in batou's order.
#[test]
fn configuration_errors_are_sorted_like_batou() {
    let (_, errors) = configure(
        "[hosts]\na = needy, lonely, cycle1, cycle2, badoverride, misused\n[component:badoverride]\ncount = many\n",
    );
    let titles: Vec<&str> = errors
        .iter()
        .filter(|l| l.starts_with("ERROR: "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        titles,
        [
            "ERROR: misused: SyncDirectory requires a source to sync from.",
            "ERROR: invalid literal for u32: 'many'",
            "ERROR: Unused provided resources",
            "ERROR: Unsatisfied resource requirements",
            "ERROR: Found dependency cycle",
            "ERROR: 3 remaining unconfigured component(s): badoverride, misused, needy",
        ],
        "{errors:#?}"
    );
}

#[component]
pub struct Quiet {}
impl Component for Quiet {}

/// The agent frees a root's tree once it is deployed; asking for that root
/// again is answered with what happened, not with "not configured".
#[test]
fn a_released_root_is_freed_and_cannot_deploy_again() {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("environments/test");
    std::fs::create_dir_all(&env_dir).unwrap();
    std::fs::write(
        env_dir.join("environment.cfg"),
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = quiet\n",
    )
    .unwrap();
    let env = Environment::load(dir.path(), "test").unwrap_or_else(|e| panic!("{:?}", e.0));
    let (model, errors) = Model::configure(ModelEnv::new(dir.path().to_path_buf(), env));
    assert!(errors.is_empty(), "{errors:?}");
    let sink = |_: batou::events::Event| {};
    assert_eq!(
        model.deploy_root("localhost", "quiet", false, &sink),
        Ok(false)
    );
    assert!(model.release_root("localhost", "quiet").is_some());
    assert!(model.release_root("localhost", "quiet").is_none());
    assert!(model.release_root("localhost", "other").is_none());
    let lines = model
        .deploy_root("localhost", "quiet", false, &sink)
        .unwrap_err();
    assert_eq!(
        lines[0].text,
        "ERROR: component quiet on host localhost was deployed already"
    );
}
