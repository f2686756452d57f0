//! The tutorial of the batou docs ("Quickstart" to "Templating from files")
//! on a crate generated from template-project/.

use batou_tests::*;
use std::os::unix::fs::PermissionsExt;

const TICK_V1: &str = "#!/bin/bash\nwhile true; do\n  date\n  sleep 1\ndone\n";

fn crumbs(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("🚀")).collect()
}

#[test]
fn tutorial_v1_deploys_then_converges() {
    let p = Project::generate("tutorial-v1");
    p.build_ok();

    let out = p.batou(&["deploy", "local"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let script = p.path.join("work/tick/tick.sh");
    assert_eq!(std::fs::read_to_string(&script).unwrap(), TICK_V1);
    let mode = std::fs::metadata(&script).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);

    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("batou/0.1.0 ("), "{}", lines[0]);
    assert_eq!(
        lines[1],
        format!("{} Preparing {}", "=".repeat(34), "=".repeat(35))
    );
    for expected in [
        "📦 main: Loading environment `local`...",
        "🌐 localhost: Connecting via local (1/1)",
        "⚪ localhost: Scheduling component tick ...",
        "  tick.sh +  sleep 1",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert_eq!(
        crumbs(&text),
        [
            "🚀 localhost: Tick > File('work/tick/tick.sh') > Presence('tick.sh')",
            "🚀 localhost: Tick > File('work/tick/tick.sh') > Mode('tick.sh')",
            "🚀 localhost: Tick > File('work/tick/tick.sh') > Content('tick.sh')",
        ]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Deployment took total=")),
        "{text}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        format!("{} DEPLOYMENT FINISHED {}", "=".repeat(29), "=".repeat(30))
    );

    let again = p.batou(&["deploy", "local"]);
    let text = stdout(&again);
    assert!(again.status.success(), "{text}");
    assert!(
        crumbs(&text).is_empty(),
        "second run changed something:\n{text}"
    );
    assert!(text.contains("DEPLOYMENT FINISHED"));
}

#[test]
fn tutorial_v2_to_v4_overrides_sources_and_templates() {
    let p = Project::generate("tutorial-v2");
    // v2: content written in code, with the attribute formatted in.
    p.write(
        "components/tick/component.rs",
        r##"
use batou::prelude::*;
use batou_stdlib::file::File;

#[component]
pub struct Tick {
    #[attribute(default = 1)]
    sleep: u64,
}

impl Component for Tick {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("tick.sh").mode("rwxr-xr-x").content(format!(
            "#!/bin/bash\nwhile true; do\n  date\n  sleep {}\ndone\n",
            self.sleep
        )));
        Ok(())
    }
}
"##,
    );
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(p.read("work/tick/tick.sh"), TICK_V1);

    // The override changes only the content, and the diff shows it.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n\n[component:tick]\nsleep = 10\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        crumbs(&text),
        ["🚀 localhost: Tick > File('work/tick/tick.sh') > Content('tick.sh')"]
    );
    assert!(text.lines().any(|l| l == "  tick.sh -  sleep 1"), "{text}");
    assert!(text.lines().any(|l| l == "  tick.sh +  sleep 10"), "{text}");
    assert!(p.read("work/tick/tick.sh").contains("sleep 10\n"));

    // v3: an explicit source template; same rendering, so nothing changes.
    p.write(
        "components/tick/component.rs",
        r##"
use batou::prelude::*;
use batou_stdlib::file::File;

#[component]
pub struct Tick {
    #[attribute(default = 1)]
    sleep: u64,
}

impl Component for Tick {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("tick.sh").mode("rwxr-xr-x").source("tick-template.sh"));
        Ok(())
    }
}
"##,
    );
    p.write(
        "components/tick/tick-template.sh",
        "#!/bin/bash\nwhile true; do\n  date\n  sleep {{component.sleep}}\ndone\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(crumbs(&text).is_empty(), "{text}");
    // Editing the source template is picked up without rebuilding.
    p.write(
        "components/tick/tick-template.sh",
        "#!/bin/bash\nwhile true; do\n  date -u\n  sleep {{component.sleep}}\ndone\n",
    );
    let out = p.batou(&["deploy", "local"]);
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "  tick.sh +  date -u"), "{text}");
    assert_eq!(
        p.read("work/tick/tick.sh"),
        "#!/bin/bash\nwhile true; do\n  date -u\n  sleep 10\ndone\n"
    );

    // v4: the implicit source (components/tick/tick.sh of the template).
    p.write(
        "components/tick/component.rs",
        &p.read("components/tick/component.rs")
            .replace(".source(\"tick-template.sh\")", ""),
    );
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.lines().any(|l| l == "  tick.sh -  date -u"), "{text}");
    assert!(p.read("work/tick/tick.sh").contains("  date\n  sleep 10\n"));
}

#[test]
fn check_and_predict_change_nothing() {
    let p = Project::generate("tutorial-check");
    p.build_ok();
    let before = snapshot(&p.path);

    let out = p.batou(&["deploy", "-c", "local"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("CONSISTENCY CHECK FINISHED"), "{text}");
    assert!(text.contains("Consistency check took total="), "{text}");
    assert!(
        !text.contains("Deploying") && !text.contains("Scheduling") && !text.contains("🌐"),
        "{text}"
    );

    let out = p.batou(&["deploy", "-P", "local"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Predicting deployment actions"), "{text}");
    assert!(text.contains("DEPLOYMENT PREDICTION FINISHED"), "{text}");
    assert_eq!(crumbs(&text).len(), 3, "{text}");
    assert!(text.contains("  tick.sh +  sleep 1"), "{text}");

    let mut after = snapshot(&p.path);
    after.retain(|(path, _, _)| path.as_os_str() != ".batou-lock");
    assert_eq!(before, after, "-c/-P changed files");
    assert!(!p.path.join("work").exists());
}
