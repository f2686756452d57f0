//! Failures in component code: a failing command during deploy, a panic in
//! configure, a missing required attribute, a template error.

use batou_tests::*;

const COMPONENTS: &str = r##"
use batou::prelude::*;
use batou_stdlib::file::File;

#[component]
pub struct Failing {}

impl Component for Failing {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("before").content("written before the failure\n"));
        Ok(())
    }
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        cx.cmd("echo to-stdout; echo to-stderr >&2; exit 3")?;
        Ok(())
    }
}

#[component]
pub struct Panicky {}

impl Component for Panicky {
    fn configure(&mut self, _cx: &mut Configure) -> batou::Result<()> {
        let v: Vec<u8> = Vec::new();
        let _ = v[3];
        Ok(())
    }
}

#[component]
pub struct Needy {
    #[attribute]
    address: String,
}

impl Component for Needy {}

#[component]
pub struct Explodes {}

impl Component for Explodes {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        panic!("boom");
    }
}

#[component]
pub struct Templated {
    #[attribute(default = 1)]
    sleep: u64,
}

impl Component for Templated {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(File::new("t").content("a\n{{ component.slep }}\n"));
        Ok(())
    }
}
"##;

fn project() -> Project {
    let p = Project::generate("deploy-errors");
    p.write("components/tick/component.rs", COMPONENTS);
    for name in ["failing", "panicky", "needy", "templated", "explodes"] {
        p.write(
            &format!("environments/{name}/environment.cfg"),
            &format!("[environment]\nconnect_method = local\n[hosts]\nlocalhost = {name}\n"),
        );
    }
    std::fs::remove_dir_all(p.path.join("environments/local")).unwrap();
    p.build_ok();
    p
}

#[test]
fn component_failures_are_reported_clearly() {
    let p = project();

    let out = p.batou(&["deploy", "failing"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "ERROR: echo to-stdout; echo to-stderr >&2; exit 3")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        &lines[at..at + 6],
        [
            "ERROR: echo to-stdout; echo to-stderr >&2; exit 3",
            "    Return code: 3",
            "STDOUT",
            "to-stdout",
            "STDERR",
            "to-stderr"
        ]
    );
    assert!(text.contains("      Component: Failing"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("DEPLOYMENT FAILED (during deploy) ======================="),
        "{text}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "{text}"
    );
    // What was deployed before the failure stays deployed (resume = rerun).
    assert_eq!(
        p.read("work/failing/before"),
        "written before the failure\n"
    );

    let out = p.batou(&["deploy", "panicky"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("ERROR: panic in configure: index out of bounds"),
        "{text}"
    );
    assert!(text.contains("      Component: Panicky"), "{text}");
    // The report points at the line of the panic.
    assert!(
        text.lines()
            .any(|l| l == "         Source: components/tick/component.rs:28"),
        "{text}"
    );
    assert!(text.contains("FAILED (during connect)"), "{text}");
    let err = stderr(&out);
    assert!(
        !err.contains("RUST_BACKTRACE") && !err.contains("internal error"),
        "{err}"
    );

    let out = p.batou(&["deploy", "explodes"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: panic while deploying explodes: boom"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("         Source: components/tick/component.rs:")),
        "{text}"
    );
    assert!(text.contains("DEPLOYMENT FAILED (during deploy)"), "{text}");
    assert!(!stderr(&out).contains("internal error"), "{}", stderr(&out));

    let out = p.batou(&["deploy", "-c", "needy"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("ERROR: No override and no default given for required attributes"),
        "{text}"
    );
    assert!(text.contains("     Attributes: address"), "{text}");
    assert!(
        text.contains(" Hint: set `address = …` in [component:needy] of the environment"),
        "{text}"
    );

    let out = p.batou(&["deploy", "-c", "templated"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("ERROR: Error while rendering template"),
        "{text}"
    );
    assert!(text.contains("       Template: t:2"), "{text}");
    assert!(
        text.contains(
            "undefined value: `component.slep` is undefined; Templated has no attribute `slep`, \
             did you mean `sleep`?"
        ),
        "{text}"
    );
    assert!(
        text.contains("      Component: Templated > File('work/templated/t') > Content('t')"),
        "{text}"
    );
    // Content was added by the library's File: the line named is the
    // user's, which added the File.
    let line = COMPONENTS
        .lines()
        .position(|l| l.contains("File::new(\"t\")"))
        .unwrap()
        + 1;
    assert!(
        text.lines()
            .any(|l| l == format!("       Added at: components/tick/component.rs:{line}")),
        "{text}"
    );
}
