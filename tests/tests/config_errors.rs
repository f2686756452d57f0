//! Bad input gets a clear error and changes nothing: compile-time override
//! checks, conversion errors at `deploy -c`, and every load error of
//! environment.cfg with its message and location.

use batou_tests::*;

fn no_work(p: &Project) {
    assert!(!p.path.join("work").exists(), "something was deployed");
}

#[test]
fn unknown_attribute_or_component_fails_the_build() {
    let p = Project::generate("compile-check");
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n\n[component:tick]\nslep = 10\n",
    );
    let out = p.build();
    let err = stderr(&out);
    assert!(!out.status.success(), "build succeeded");
    assert!(
        err.contains(
            "environments/local/environment.cfg:8: [component:tick] slep: component `tick` has no attribute `slep`, did you mean `sleep`? (known attributes: sleep)"
        ),
        "{err}"
    );

    // An unknown component names the file, the section and the key too.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n\n[component:tik]\nsleep = 10\n",
    );
    let out = p.build();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot find macro `__batou_component_tik`"),
        "{err}"
    );
    assert!(
        err.contains("environments/local/environment.cfg:8: [component:tik] sleep"),
        "{err}"
    );

    // Fixed, it builds; a NEW environment directory is checked as well.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n\n[component:tick]\nsleep = 10\n",
    );
    p.build_ok();
    p.write(
        "environments/staging/environment.cfg",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick\n[component:tick]\nsleeep = 3\n",
    );
    let out = p.build();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("environments/staging/environment.cfg:6: [component:tick] sleeep"),
        "{err}"
    );
    std::fs::remove_dir_all(p.path.join("environments/staging")).unwrap();

    // Names that cannot be components at all.
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick, my-app\n\n[component:web server]\nport = 1\n",
    );
    let err = stderr(&p.build());
    assert!(
        err.contains("environments/local/environment.cfg:5: [hosts] localhost = my-app: not a valid component name"),
        "{err}"
    );
    assert!(
        err.contains("environments/local/environment.cfg:7: [component:web server] is not a valid component name"),
        "{err}"
    );
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n",
    );

    // A component directory that is not a module name.
    p.write("components/my-app/component.rs", "");
    let err = stderr(&p.build());
    assert!(
        err.contains("components/my-app/component.rs: `my-app` is not a valid module name"),
        "{err}"
    );
    std::fs::remove_dir_all(p.path.join("components/my-app")).unwrap();
    p.build_ok();
}

#[test]
fn a_value_that_does_not_convert_fails_the_check_and_touches_nothing() {
    let p = Project::generate("conversion-check");
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n\n[component:tick]\nsleep = ten\n",
    );
    p.build_ok();
    for args in [&["deploy", "-c", "local"][..], &["deploy", "local"][..]] {
        let out = p.batou(args);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("ERROR: invalid literal for u64: 'ten'"),
            "{text}"
        );
        assert!(text.contains("      Attribute: Tick.sleep"), "{text}");
        assert!(text.contains("     Conversion: u64('ten')"), "{text}");
        assert!(
            text.contains("       Location: environments/local/environment.cfg:8"),
            "{text}"
        );
        assert!(text.contains(" Affected hosts: localhost"), "{text}");
        assert!(
            text.contains("ERROR: 1 remaining unconfigured component(s): tick"),
            "{text}"
        );
        assert!(text.contains("2 ERRORS - CONFIGURATION FAILED"), "{text}");
        assert!(text.contains("FAILED (during connect)"), "{text}");
        no_work(&p);
    }
}

#[test]
fn an_endless_override_template_stops_with_a_clear_error_also_for_check() {
    let p = Project::generate("template-limits");
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n\n[component:tick]\nsleep = {% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}1\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "-c", "local"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "the template used up its step budget of 50000000 (an endless or very large loop?)"
        ),
        "{text}"
    );
    assert!(text.contains("CONSISTENCY CHECK FAILED"), "{text}");
    no_work(&p);
}

/// Each environment is one case: (name, cfg text, lines the report must contain).
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "malformed",
        "[environment]\nconnect_method = local\n[hosts\nlocalhost = tick\n",
        &["ERROR: Malformed environment configuration", "       Location: environments/malformed/environment.cfg:3"],
    ),
    (
        "superfluous",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick\n[hostz]\nx = y\n",
        &[
            "ERROR: Superfluous section in environment configuration",
            "        Section: hostz",
            "       Location: environments/superfluous/environment.cfg:5",
        ],
    ),
    (
        "unknownkey",
        "[environment]\nconnect_method = local\nupdate_metod = sync\n[hosts]\nlocalhost = tick\n",
        &[
            "ERROR: Unknown key in environment configuration",
            "        Section: environment",
            "            Key: update_metod",
            "       Location: environments/unknownkey/environment.cfg:3",
        ],
    ),
    (
        "hostkey",
        "[environment]\nconnect_method = local\n[host:localhost]\ncomponents = tick\nplatfrom = debian\n",
        &[
            "ERROR: Unknown key in environment configuration",
            "        Section: host:localhost",
            "            Key: platfrom",
            "       Location: environments/hostkey/environment.cfg:5",
        ],
    ),
    (
        "missingcomponent",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick, tock\n",
        &[
            "ERROR: Missing component",
            "      Component: tock",
            "       Location: environments/missingcomponent/environment.cfg:4",
        ],
    ),
    (
        "duplicatehost",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick\n[host:localhost]\ncomponents = tick\n",
        &[
            "ERROR: Duplicate definition of host: localhost",
            "          First: environments/duplicatehost/environment.cfg:4",
            "       Location: environments/duplicatehost/environment.cfg:5",
        ],
    ),
    (
        "badvalues",
        "[environment]\nconnect_method = telnet\njobs = many\nrequire_v4 = perhaps\nssh_client = putty\n[hosts]\nlocalhost = tick\n[host:other]\nignore = sometimes\n",
        &[
            "ERROR: Invalid value in environment configuration",
            "            Key: connect_method",
            "        Message: expected one of: local, ssh, vagrant, kitchen",
            "       Location: environments/badvalues/environment.cfg:2",
            "            Key: jobs",
            "        Message: expected a positive whole number",
            "            Key: require_v4",
            "            Key: ssh_client",
            "        Message: expected russh or openssh",
            "            Key: ignore",
            "       Location: environments/badvalues/environment.cfg:9",
        ],
    ),
    (
        "duplicatekey",
        "[environment]\nconnect_method = local\nconnect_method = ssh\n[hosts]\nlocalhost = tick\n",
        &[
            "ERROR: Duplicate key in environment configuration",
            "            Key: connect_method",
            "          First: environments/duplicatekey/environment.cfg:2",
            "       Location: environments/duplicatekey/environment.cfg:3",
        ],
    ),
    (
        "sectionless",
        "connect_method = local\n[hosts]\nlocalhost = tick\n[host:]\ncomponents = tick\n",
        &[
            "ERROR: Key outside of any section in environment configuration",
            "            Key: connect_method",
            "       Location: environments/sectionless/environment.cfg:1",
            "ERROR: Invalid section in environment configuration",
            "        Message: a [host:NAME] section needs a host name",
            "       Location: environments/sectionless/environment.cfg:4",
        ],
    ),
    (
        "nohosts",
        "[environment]\nconnect_method = local\n",
        &["ERROR: No host found in environment."],
    ),
    (
        "badresolver",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick\n[resolver]\nlocalhost = 127.0.0.1 no-ip\n",
        &["ERROR: Not a valid IP address: no-ip", "       Location: environments/badresolver/environment.cfg:6"],
    ),
];

#[test]
fn every_load_error_is_reported_with_its_location() {
    let p = Project::generate("load-errors");
    // An unknown root component fails the build; written after it, the
    // environment is still checked when it loads.
    let (built, later): (Vec<_>, Vec<_>) = CASES.iter().partition(|c| c.0 != "missingcomponent");
    for (name, cfg, _) in built {
        p.write(&format!("environments/{name}/environment.cfg"), cfg);
    }
    p.build_ok();
    for (name, cfg, _) in later {
        p.write(&format!("environments/{name}/environment.cfg"), cfg);
    }
    for (name, _, expected) in CASES {
        let out = p.batou(&["deploy", name]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {text}");
        for e in *expected {
            assert!(
                text.lines().any(|l| l == *e),
                "{name}: missing {e:?} in\n{text}"
            );
        }
        assert!(
            text.trim_end()
                .ends_with("DEPLOYMENT FAILED (during load) ========================"),
            "{name}: {text}"
        );
        no_work(&p);
    }

    // All errors of one file are reported together, in one run.
    let out = p.batou(&["deploy", "badvalues"]);
    assert_eq!(stdout(&out).matches("ERROR: Invalid value").count(), 5);

    let out = p.batou(&["deploy", "production"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("ERROR: Missing environment\n    Environment: production"),
        "{text}"
    );
    no_work(&p);
}

#[test]
fn usage_errors_exit_2_and_a_second_deploy_is_locked_out() {
    let p = Project::generate("cli-errors");
    p.write(
        "components/tick/component.rs",
        r##"
use batou::prelude::*;

#[component]
pub struct Tick {}

impl Component for Tick {
    fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
        Err(batou::Error::update_needed("always"))
    }
    fn update(&mut self, cx: &mut Deploy) -> batou::Result<()> {
        std::fs::write(cx.workdir().join("started"), "")?;
        cx.cmd("sleep 3")?;
        Ok(())
    }
}
"##,
    );
    p.build_ok();
    let out = p.batou(&["deploy"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("<ENVIRONMENT>"), "{}", stderr(&out));
    let out = p.batou(&["deploy", "-j", "0", "local"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid value '0' for '--jobs <JOBS>'"),
        "{}",
        stderr(&out)
    );
    // A path instead of an environment name: PROJECT/environment.cfg is
    // not an environment.
    p.write("environment.cfg", "[hosts]\nlocalhost = tick\n");
    let out = p.batou(&["deploy", "-c", ".."]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ERROR: Missing environment"), "{text}");
    assert!(text.contains("Existing environments: local"), "{text}");
    no_work(&p);

    let mut first = p.command(&["deploy", "local"]).spawn().unwrap();
    let started = p.path.join("work/tick/started");
    wait_for(&started, "first deployment starting");
    let second = p.batou(&["deploy", "local"]);
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(1));
    assert!(err.contains("Could not acquire lock .batou-lock"), "{err}");
    assert!(
        err.contains("is currently running and locked the lockfile."),
        "{err}"
    );
    assert!(first.wait().unwrap().success());
}

#[test]
fn a_component_name_defined_twice_is_an_error_only_where_used() {
    let p = Project::generate("duplicate-component");
    // `file` is also batou_stdlib's File.
    p.write(
        "components/tick/component.rs",
        &format!(
            "{}\n#[component]\npub struct File {{}}\nimpl Component for File {{}}\n",
            p.read("components/tick/component.rs")
                .replace(
                    "use batou_stdlib::file::File;",
                    "use batou_stdlib::file::File as StdFile;"
                )
                .replace("File::new(", "StdFile::new(")
        ),
    );
    // Chosen by crate: checked at build time, deployed.
    p.write(
        "environments/pick/environment.cfg",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick, duplicate_component.file\n",
    );
    p.build_ok();
    // Environments that do not use the name are not affected.
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = p.batou(&["deploy", "pick"]);
    assert!(out.status.success(), "{}", stdout(&out));

    // Used without a crate: a load error naming both and how to choose.
    p.write(
        "environments/both/environment.cfg",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = tick, file\n",
    );
    std::fs::remove_dir_all(p.path.join("work")).unwrap();
    let out = p.batou(&["deploy", "both"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: Duplicate component \"file\""),
        "{text}"
    );
    let occurrences: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("     Occurrence: File ("))
        .collect();
    assert_eq!(occurrences.len(), 2, "{text}");
    assert!(
        occurrences
            .iter()
            .any(|l| l.starts_with("     Occurrence: File (src/file/mod.rs:")
                && l.ends_with(" in batou-stdlib)")),
        "{text}"
    );
    assert!(
        occurrences.iter().any(|l| l
            .starts_with("     Occurrence: File (components/tick/component.rs:")
            && l.ends_with(" in duplicate-component)")),
        "{text}"
    );
    assert!(
        text.contains(
            "     Choose one: name it batou_stdlib.file or duplicate_component.file in environment.cfg"
        ),
        "{text}"
    );
    assert!(text.contains("DEPLOYMENT FAILED (during load)"), "{text}");
    no_work(&p);

    // At build time the plain name is ambiguous; an override of the
    // chosen one is checked against that crate's component.
    let out = p.build();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("`__batou_component_file` is ambiguous"),
        "{err}"
    );
    assert!(
        err.contains("environments/both/environment.cfg:4: [hosts] localhost = file"),
        "{err}"
    );
    std::fs::remove_file(p.path.join("environments/both/environment.cfg")).unwrap();
    p.write(
        "environments/pick/environment.cfg",
        "[environment]\nconnect_method = local\n[hosts]\nlocalhost = duplicate_component.file\n\
         [component:duplicate_component.file]\npath = x\n",
    );
    let err = stderr(&p.build());
    assert!(
        err.contains(
            "environments/pick/environment.cfg:6: [component:duplicate_component.file] path: \
             component `file` has no attribute `path` (known attributes: none)"
        ),
        "{err}"
    );
}
