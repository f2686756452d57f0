//! buildout: the real zc.buildout (installed by pip from wheels into the
//! workdir's venv) runs a config rendered from the component's directory
//! on a real sshd host, with a recipe from a wheel built here; it runs
//! again only when its config changed or its last run failed.

use batou_tests::python::{
    build_wheel_with_entry_points, copy_wheels, BUILDOUT_SETUPTOOLS, BUILDOUT_VERSION,
};
use batou_tests::*;

const SITE: &str = r##"
use batou::prelude::*;
use batou_stdlib::buildout::Buildout;

#[component]
pub struct Site {
    #[attribute(default = "hello")]
    greeting: String,
    #[attribute(default = "greeter")]
    recipe: String,
    #[attribute]
    recipes: String,
    #[attribute(default = Vec::<String>::new())]
    pip_options: Vec<String>,
}

impl Component for Site {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(
            Buildout::new()
                .python("3")
                .setuptools("SETUPTOOLS")
                .wheel("0.40.0")
                .packaging("24.0")
                .version("VERSION")
                .install_options(self.pip_options.clone()),
        );
        Ok(())
    }
}
"##;

const CONFIG: &str = "[buildout]\nparts = hello\nnewest = false\n\
find-links = {{ component.recipes }}\nallow-hosts = localhost\n\n\
[hello]\nrecipe = {{ component.recipe }}\ngreeting = {{ component.greeting }}\n";

const RECIPE: &str = "import os\n\n\
class Recipe:\n    \
def __init__(self, buildout, name, options):\n        \
self.options = options\n        \
self.location = options['location'] = os.path.join(buildout['buildout']['parts-directory'], name)\n\n    \
def install(self):\n        \
os.makedirs(self.location, exist_ok=True)\n        \
with open(os.path.join(self.location, 'greeting'), 'w') as f:\n            \
f.write(self.options['greeting'])\n        \
return [self.location]\n\n    \
update = install\n";

#[test]
fn a_buildout_runs_on_a_real_sshd_host_when_its_config_changes() {
    let Some(lab) = batou_tests::sshd::SshLab::for_test(&["b1"]) else {
        return;
    };
    let host = &lab.hosts[0];
    let wheels = host.path("wheels");
    build_wheel_with_entry_points(
        &wheels,
        "greeter",
        "1.0",
        RECIPE,
        "[zc.buildout]\ndefault = greeter:Recipe\n",
    );
    copy_wheels(
        &wheels,
        &["zc.buildout-", "setuptools-68", "wheel-", "packaging-"],
    );
    host.give(&wheels);

    let p = Project::generate("buildout-e2e");
    p.write(
        "components/site/component.rs",
        &SITE
            .replace("SETUPTOOLS", BUILDOUT_SETUPTOOLS)
            .replace("VERSION", BUILDOUT_VERSION),
    );
    p.write("components/site/buildout.cfg", CONFIG);
    p.write("ssh_config", &lab.ssh_config());
    let cfg = |extra: &str| {
        format!(
            "[environment]\nconnect_method = ssh\n\n[hosts]\nb1 = site\n\n\
             [component:site]\nrecipes = {w}\npip_options = --no-index, --find-links={w}\n{extra}",
            w = wheels.display()
        )
    };
    p.write("environments/remote/environment.cfg", &cfg(""));
    p.build_ok();
    let work = host.path("deployment/work/site");

    let out = p.batou(&["deploy", "-P", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!work.join("bin").exists(), "-P changes nothing");

    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("🚀 b1: Site > Buildout\n"),
        "{}",
        stdout(&out)
    );
    let greeting =
        || std::fs::read_to_string(work.join("parts/hello/greeting")).unwrap_or_default();
    assert_eq!(greeting(), "hello");
    assert!(work.join(".installed.cfg").is_file());
    assert!(work.join(".batou.buildout.success").is_file());

    let again = p.batou(&["deploy", "remote"]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert!(
        !stdout(&again).contains("🚀"),
        "converged:\n{}",
        stdout(&again)
    );

    // A changed config: rendered, and buildout runs again.
    p.write(
        "environments/remote/environment.cfg",
        &cfg("greeting = good day\n"),
    );
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("🚀 b1: Site > Buildout\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(greeting(), "good day");

    // A failing run fails the deployment with buildout's words; fixed, it
    // runs again.
    p.write(
        "environments/remote/environment.cfg",
        &cfg("greeting = good day\nrecipe = nothere\n"),
    );
    let out = p.batou(&["deploy", "remote"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("nothere"), "{}", stdout(&out));
    p.write(
        "environments/remote/environment.cfg",
        &cfg("greeting = again\n"),
    );
    let out = p.batou(&["deploy", "remote"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(greeting(), "again");
}
