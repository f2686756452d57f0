//! The event stream's views and the command line's conventions: JSON lines
//! for every kind of run, `--limit`, `--color`, `completions`, `graph`,
//! exit codes, `--version`, merged failures across hosts.

use batou_tests::*;
use std::process::Command;

const COMPONENTS: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;

pub const GREETING: Resource<String> = Resource::new("greeting");

#[component]
pub struct Provider {}

impl Component for Provider {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.provide(&GREETING, format!("hello from {}", cx.host_name()))?;
        cx.add(File::new("p.txt").content("provided\n"));
        Ok(())
    }
}

#[component]
pub struct Consumer {}

impl Component for Consumer {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let greetings = cx.require(&GREETING)?;
        cx.add(File::new("c.txt").content(format!("{}\n", greetings.join(", "))));
        Ok(())
    }
}

#[component]
pub struct Broken {}

impl Component for Broken {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::usage("the disk is full"))
    }
}
"##;

fn project(name: &str) -> Project {
    let p = Project::generate(name);
    p.write("components/tick/component.rs", COMPONENTS);
    p.write(
        "environments/pair/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\na = provider\nb = consumer\n",
    );
    p.write(
        "environments/broken/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nh1 = broken\nh2 = broken\n",
    );
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = provider\n",
    );
    p.build_ok();
    p
}

/// Every line of stdout as a JSON object with an `event` field.
fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    let text = stdout(out);
    assert!(!text.contains('\u{1b}'), "no escape codes in JSON: {text}");
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v["event"].is_string(), "no event field: {l}");
            v
        })
        .collect()
}

fn find<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn json_lines_describe_deployments_checks_predictions_and_failures() {
    let p = project("cli-json");
    let out = p.batou(&["--color", "always", "deploy", "--json", "pair"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let ev = events(&out);
    assert_eq!(ev[0]["event"], "started");
    let changed = find(&ev, "component_changed");
    let content = changed
        .iter()
        .find(|e| e["component"] == "Consumer > File('work/consumer/c.txt') > Content('c.txt')")
        .unwrap_or_else(|| panic!("{changed:?}"));
    assert_eq!(content["host"], "b");
    assert_eq!(content["root"], "consumer");
    let diff: Vec<&str> = content["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(diff.contains(&"+hello from a"), "{diff:?}");
    let finished = find(&ev, "root_finished");
    assert_eq!(finished.len(), 2);
    assert!(finished
        .iter()
        .all(|e| e["changed"] == true && e["seconds"].is_number()));
    let last = ev.last().unwrap();
    assert_eq!(last["event"], "finished");
    assert_eq!(last["action"], "deploy");
    assert_eq!(last["success"], true);
    assert!(last["step"].is_null());
    for t in ["total", "connect", "deploy"] {
        assert!(last["timings"][t].is_number(), "{last}");
    }
    let hosts = last["timings"]["hosts"].as_array().unwrap();
    let names: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(hosts
        .iter()
        .all(|h| h["connect"].is_number() && h["deploy"].is_number()));
    let slowest = last["timings"]["slowest"].as_array().unwrap();
    assert_eq!(slowest.len(), 2, "{last}");
    assert!(slowest[0]["seconds"].as_f64() >= slowest[1]["seconds"].as_f64());

    let out = p.batou(&["deploy", "--json", "-c", "pair"]);
    let ev = events(&out);
    assert_eq!(ev.last().unwrap()["action"], "check");
    let out = p.batou(&["deploy", "--json", "-P", "pair"]);
    let ev = events(&out);
    assert_eq!(ev.last().unwrap()["action"], "predict");
    assert!(find(&ev, "component_changed").is_empty(), "converged");

    let out = p.batou(&["deploy", "--json", "-j", "2", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&out);
    let failed = find(&ev, "root_failed");
    assert_eq!(failed.len(), 2, "{ev:?}");
    assert_eq!(failed[0]["root"], "broken");
    assert_eq!(failed[0]["message"], "the disk is full");
    let last = ev.last().unwrap();
    assert_eq!(
        (last["success"].clone(), last["step"].clone()),
        (false.into(), "deploy".into())
    );

    // A configuration error is a report.
    p.write(
        "environments/unsatisfied/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nb = consumer\n",
    );
    let out = p.batou(&["deploy", "--json", "unsatisfied"]);
    let ev = events(&out);
    let reports = find(&ev, "report");
    assert!(
        reports
            .iter()
            .any(|r| r["title"] == "Unsatisfied resource requirements"),
        "{reports:?}"
    );
    assert_eq!(ev.last().unwrap()["step"], "connect");
}

#[test]
fn the_same_failure_on_several_hosts_is_one_block() {
    let p = project("cli-merged");
    // Two jobs: both hosts fail before the first failure stops new work.
    let out = p.batou(&["deploy", "-j", "2", "broken"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("ERROR: the disk is full").count(), 1, "{text}");
    assert!(text.contains(" Affected hosts: h1, h2"), "{text}");
    assert!(text.contains("DEPLOYMENT FAILED (during deploy)"), "{text}");
}

#[test]
fn limit_deploys_only_matching_hosts_with_the_whole_model_configured() {
    let p = project("cli-limit");
    let out = p.batou(&["deploy", "--limit", "b", "pair"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert_eq!(p.read("work/consumer/c.txt"), "hello from a\n");
    assert!(
        !p.path.join("work/provider").exists(),
        "a is outside the limit"
    );
    assert!(
        text.contains("⏭️ a: Not selected by --limit (1/2)"),
        "{text}"
    );
    assert!(
        text.contains("⏭️ a: Skipping component provider ... (not selected by --limit)"),
        "{text}"
    );
    assert!(text.contains("\n  b: connect="), "per-host timings: {text}");
    assert!(
        text.contains("Slowest components: consumer on b ("),
        "{text}"
    );

    // `!pattern` excludes, as Ansible's and colmena's --limit do.
    std::fs::remove_dir_all(p.path.join("work")).unwrap();
    let out = p.batou(&["deploy", "--limit", "!a", "pair"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("⏭️ a: Not selected by --limit (1/2)"),
        "{text}"
    );
    assert_eq!(p.read("work/consumer/c.txt"), "hello from a\n");
    assert!(!p.path.join("work/provider").exists(), "a is excluded");
    let out = p.batou(&["deploy", "--limit", "*,!a,!b", "pair"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("ERROR: --limit *,!a,!b matches no host of environment pair"),
        "{}",
        stdout(&out)
    );

    let out = p.batou(&["deploy", "--limit", "x*,y", "pair"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out)
            .contains("ERROR: --limit x*,y matches no host of environment pair; its hosts: a, b"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn colours_follow_the_flag_then_no_color_then_clicolor_force() {
    let p = project("cli-color");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = p.command(args);
        c.env_remove("NO_COLOR");
        for (k, v) in env {
            c.env(k, v);
        }
        stdout(&c.output().unwrap())
    };
    let esc = '\u{1b}';
    assert!(run(
        &["--color", "always", "deploy", "-c", "local"],
        &[("NO_COLOR", "1")]
    )
    .contains(esc));
    assert!(!run(
        &["--color", "never", "deploy", "-c", "local"],
        &[("CLICOLOR_FORCE", "1")]
    )
    .contains(esc));
    assert!(run(&["deploy", "-c", "local"], &[("CLICOLOR_FORCE", "1")]).contains(esc));
    assert!(!run(
        &["deploy", "-c", "local"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    )
    .contains(esc));
    assert!(
        !run(&["deploy", "-c", "local"], &[]).contains(esc),
        "not a terminal"
    );
    assert!(!run(
        &["--color", "always", "deploy", "--json", "-c", "local"],
        &[]
    )
    .contains(esc));
}

#[test]
fn completions_graph_version_and_exit_codes() {
    let p = project("cli-misc");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = p.batou(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(stdout(&out).contains("deploy"), "{shell}");
    }
    let script = p.path.join("completion.bash");
    std::fs::write(&script, p.batou(&["completions", "bash"]).stdout).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(checked.success(), "bash -n accepts the completion script");

    let out = p.batou(&["graph", "pair"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph batou {"), "{dot}");
    assert!(
        dot.contains("label=\"a\";") && dot.contains("label=\"b\";"),
        "{dot}"
    );
    assert!(dot.contains("[label=\"greeting\"]"), "{dot}");
    let svg = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(dot.as_bytes())?;
            c.wait_with_output()
        })
        .expect("graphviz's dot runs");
    assert!(svg.status.success(), "dot accepts the graph");
    assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
    assert!(!p.path.join("work").exists(), "graph deploys nothing");

    let out = p.batou(&["--version"]);
    assert_eq!(
        stdout(&out).trim(),
        "batou 0.1.0 (cli-misc 0.1.0)",
        "{}",
        stdout(&out)
    );
    let out = p.batou(&[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bare invocation is a usage error"
    );
    assert!(stderr(&out).contains("Usage:"), "{}", stderr(&out));

    let out = p.batou(&["deploy", "-c", "pari"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("Existing environments: broken, local, pair"),
        "{text}"
    );
    assert!(text.contains("Did you mean: pair"), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap_or("")
            .starts_with("batou/0.1.0 (rust 1."),
        "{text}"
    );

    // A port where nothing listens: exit code 3.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let known = p.path.join("known_hosts");
    std::fs::write(&known, "").unwrap();
    p.write(
        "ssh_config",
        &format!(
            "Host closed\n  HostName 127.0.0.1\n  Port {port}\n  User nobody\n  UserKnownHostsFile {}\n",
            known.display()
        ),
    );
    p.write(
        "environments/closed/environment.cfg",
        "[environment]\nconnect_method = ssh\ntimeout = 1\n\n[hosts]\nclosed = provider\n",
    );
    let out = p.batou(&["deploy", "closed"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("Connection refused"), "{text}");

    // An environment in batou 2.2's layout: commands ask for migrate,
    // which moves it (once) and prints batou's steps.
    p.write(
        "environments/legacy.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\na = provider\nb = consumer\n",
    );
    let out = p.batou(&["deploy", "-c", "legacy"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Please run `./batou migrate` first."),
        "{text}"
    );
    assert!(text.contains("Found: environments/legacy.cfg"), "{text}");
    let out = p.batou(&["secrets", "summary"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .starts_with("ERROR: Please run `./batou migrate` first.\n    environments/legacy.cfg"),
        "{}",
        stderr(&out)
    );
    let out = p.batou(&["migrate"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for line in [
        "Current version: 0",
        "⚪ Version: 2301",
        "    ✅ Environments have separate directories now",
        "    🔧 Address objects now only resolve IPv4 addresses by default",
        "    environments/legacy.cfg → environments/legacy/environment.cfg",
        "Reached version: 2400",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    let out = p.batou(&["deploy", "-c", "legacy"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = p.batou(&["migrate"]);
    assert_eq!(
        stdout(&out),
        "Current version: 2400\nReached version: 2400\n",
        "migrate is idempotent"
    );
}

const SHOW: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;

/// Shows what it was configured with.
#[component]
pub struct Show {
    #[attribute(default = "", expand = false)]
    raw: String,
    #[attribute(default = "")]
    cooked: String,
}

impl Component for Show {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let env = cx.expand(self, "platform={{ environment.platform }} timeout={{ environment.timeout }}")?;
        let text = format!("{env}\nraw={}\ncooked={}\n", self.raw, self.cooked);
        cx.add(File::new("shown").is_template(false).content(text));
        Ok(())
    }
}

/// Attached to Show on hosts of the platform `debian`.
#[component(platform = "debian", base = Show)]
pub struct ShowDebian;

impl Component for ShowDebian {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("debian-only").content("yes\n"));
        Ok(())
    }
}
"##;

/// `-p` and `-t` win over the environment (the platform also attaches
/// platform components), and `#[attribute(expand = false)]` takes an
/// override as written.
#[test]
fn platform_and_timeout_flags_and_unexpanded_attributes() {
    let p = Project::generate("cli-platform");
    p.write("components/tick/component.rs", SHOW);
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\nplatform = base\ntimeout = 3\n\n[hosts]\nlocalhost = show\n\n\
         [component:show]\nraw = {{ host.name }}\ncooked = {{ host.name }}\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        p.read("work/show/shown"),
        "platform=base timeout=3\nraw={{ host.name }}\ncooked=localhost\n"
    );
    assert!(!p.path.join("work/show/debian-only").exists());

    let out = p.batou(&["deploy", "-p", "debian", "-t", "9", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        p.read("work/show/shown"),
        "platform=debian timeout=9\nraw={{ host.name }}\ncooked=localhost\n"
    );
    assert_eq!(p.read("work/show/debian-only"), "yes\n");
    let out = p.batou(&["deploy", "--platform", "base", "--timeout", "4", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        p.read("work/show/shown"),
        "platform=base timeout=4\nraw={{ host.name }}\ncooked=localhost\n"
    );
}
