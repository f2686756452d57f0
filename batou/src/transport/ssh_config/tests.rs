use super::*;

/// A directory of config files for one test, removed at the end.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::Builder::new()
            .prefix("batou sshcfg ")
            .tempdir()
            .unwrap())
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text.replace("$DIR", &self.0.path().to_string_lossy())).unwrap();
        p
    }
}

fn builtin(config: &Path, host: &str) -> Result<Target, String> {
    finish(read_builtin(Some(config), host)?, Some(config), host)
}

#[test]
fn globs_match_without_blowing_up() {
    assert!(glob("*", ""));
    assert!(glob("web?.example.*", "web1.example.com"));
    assert!(!glob("web?.example.*", "web10.example.com"));
    assert!(glob("*.*.com", "a.b.com"));
    assert!(!glob("a*b", "acbd"));
    assert!(glob("a*b*", "acbd"));
    // Exponential for a naive matcher: 40 stars against 200 characters.
    let pattern = format!("{}b", "a*".repeat(40));
    let text = "a".repeat(200);
    assert!(!glob(&pattern, &text));
    assert!(glob(&pattern, &format!("{text}b")));
}

#[test]
fn arguments_split_as_openssh_splits_them() {
    assert_eq!(
        split_arguments(r#""/a b/c" 'd e' f\ g h # comment"#).unwrap(),
        ["/a b/c", "d e", "f g", "h"]
    );
    assert_eq!(split_arguments(r#"a"b c"d"#).unwrap(), ["ab cd"]);
    assert_eq!(
        split_arguments(r#""it's" 'say "x"'"#).unwrap(),
        ["it's", "say \"x\""]
    );
    assert_eq!(
        split_arguments("\"/a b").unwrap_err(),
        "unterminated \"quote"
    );
    assert_eq!(split_keyword("HostName=x"), ("hostname".into(), "x"));
    assert_eq!(split_keyword("Port = 22"), ("port".into(), "22"));
    assert_eq!(split_keyword("User\tdeploy"), ("user".into(), "deploy"));
}

#[test]
fn first_value_wins_and_host_patterns_negate() {
    let d = Dir::new();
    let cfg = d.write(
        "config",
        "Host web? !web9\n  HostName 10.0.0.1\n  Port 2222\n  IdentityFile /k/web\nHost *\n  User deploy\n  Port 22\n  IdentityFile /k/all\n",
    );
    let t = builtin(&cfg, "web1").unwrap();
    assert_eq!(
        (t.hostname.as_str(), t.port, t.user.as_str()),
        ("10.0.0.1", 2222, "deploy")
    );
    assert_eq!(
        t.identity_files,
        [PathBuf::from("/k/web"), PathBuf::from("/k/all")],
        "every IdentityFile is kept, in order"
    );
    let other = builtin(&cfg, "web9").unwrap();
    assert_eq!((other.hostname.as_str(), other.port), ("web9", 22));
}

#[test]
fn includes_follow_globs_and_relative_paths_and_only_apply_where_active() {
    let d = Dir::new();
    d.write("conf.d/10-web.conf", "Host web\n  HostName 10.0.0.5\n");
    d.write(
        "conf.d/20-db.conf",
        "Host db\n  HostName 10.0.0.6\n  User dbadmin\n",
    );
    d.write("conf.d/README", "Host web\n  HostName wrong\n");
    d.write("only-for-db.conf", "Port 2200\nHost *\n  Port 2201\n");
    let cfg = d.write(
        "config",
        "Include \"$DIR/conf.d/*.conf\"\nHost db\n  Include \"$DIR/only-for-db.conf\"\nHost *\n  Port 22\n",
    );
    let web = builtin(&cfg, "web").unwrap();
    assert_eq!((web.hostname.as_str(), web.port), ("10.0.0.5", 22));
    let db = builtin(&cfg, "db").unwrap();
    assert_eq!(
        (db.hostname.as_str(), db.user.as_str(), db.port),
        ("10.0.0.6", "dbadmin", 2200)
    );
    // Relative Includes start at ~/.ssh for the user's files.
    let reader = Reader {
        original: "x".into(),
        local_user: "u".into(),
        settings: Settings::default(),
        final_pass: false,
        wants_final: false,
        include_base: d.path("conf.d"),
    };
    let files = reader.include_files("*.conf", "config:1").unwrap();
    assert_eq!(
        files,
        [d.path("conf.d/10-web.conf"), d.path("conf.d/20-db.conf")]
    );
    // An Include of itself ends with a clear error, not a stack overflow.
    let looping = d.write("loop", "Include \"$DIR/loop\"\n");
    let e = builtin(&looping, "x").unwrap_err();
    assert!(e.ends_with(": Include nested too deeply"), "{e}");
}

#[test]
fn match_criteria_evaluate_in_order() {
    let d = Dir::new();
    let me = local_user();
    let cfg = d.write(
        "config",
        &format!(
            "Host alias\n  HostName real.example.com\n\
             Match host real.example.com originalhost alias\n  User viaalias\n\
             Match originalhost other,!nope localuser {me}\n  User local\n\
             Match !host *.example.com user {me}\n  Port 2022\n\
             Match exec \"test %h = real.example.com\"\n  Port 2023\n\
             Match exec false\n  IdentityFile /never\n\
             Match final host alias2\n  HostKeyAlias finalpass\n\
             Match all\n  IdentityFile /always\n"
        ),
    );
    let a = builtin(&cfg, "alias").unwrap();
    assert_eq!(
        (a.hostname.as_str(), a.user.as_str(), a.port),
        ("real.example.com", "viaalias", 2023)
    );
    assert_eq!(a.identity_files, [PathBuf::from("/always")]);
    let o = builtin(&cfg, "other").unwrap();
    assert_eq!((o.user.as_str(), o.port), ("local", 22));
    let n = builtin(&cfg, "nope").unwrap();
    assert_eq!((n.user.as_str(), n.port), (me.as_str(), 2022));
    let f = builtin(&cfg, "alias2").unwrap();
    assert_eq!(f.host_key_alias.as_deref(), Some("finalpass"));
}

#[test]
fn tokens_variables_and_tilde_expand_in_file_names() {
    let d = Dir::new();
    let cfg = d.write(
        "config",
        "Host web\n  HostName 10.1.2.3\n  Port 2222\n  User deploy\n  ProxyJump jump\n\
         IdentityFile \"/keys with space/%h_%p_%r_%n\" %d/k ~/k2\n\
         IdentityFile /k/%u/%%/%k\n  UserKnownHostsFile ${HOME}/kh /kh2\n",
    );
    let t = builtin(&cfg, "web").unwrap();
    let home = home();
    assert_eq!(
        t.identity_files,
        [
            PathBuf::from("/keys with space/10.1.2.3_2222_deploy_web"),
            home.join("k"),
            home.join("k2"),
            PathBuf::from(format!("/k/{}/%/web", local_user())),
        ]
    );
    assert_eq!(t.known_hosts, [home.join("kh"), PathBuf::from("/kh2")]);
    assert_eq!(t.proxy_jump.as_deref(), Some("jump"));
    let bad = d.write("bad", "IdentityFile /k/%Q\n");
    assert_eq!(
        builtin(&bad, "web").unwrap_err(),
        "ssh configuration: unknown token %Q in IdentityFile `/k/%Q`"
    );
    let unset = d.write("unset", "IdentityFile ${BATOU_TEST_SURELY_UNSET}/k\n");
    assert_eq!(
        builtin(&unset, "web").unwrap_err(),
        "ssh configuration: IdentityFile `${BATOU_TEST_SURELY_UNSET}/k` uses \
         ${BATOU_TEST_SURELY_UNSET}, which is not set"
    );
}

#[test]
fn what_the_reader_cannot_evaluate_is_named_with_the_way_out() {
    let d = Dir::new();
    let cfg = d.write(
        "config",
        "Host x\n  Port 1\nMatch localnetwork 10.0.0.0/8\n  User y\n",
    );
    let e = builtin(&cfg, "x").unwrap_err();
    assert_eq!(
        e,
        format!(
            "{}:3: `Match localnetwork` cannot be evaluated by batou's own ssh_config reader \
             (OpenSSH's `ssh`, which batou asks with `ssh -G` when it is installed, is not): \
             install OpenSSH's client or set `ssh_client = openssh` in [environment]",
            cfg.display()
        )
    );
    let unknown = d.write("unknown", "Match hots x\n");
    assert!(builtin(&unknown, "x")
        .unwrap_err()
        .ends_with(":1: unknown Match criterion `hots`"),);
    let port = d.write("port", "Port abc\n");
    assert_eq!(
        builtin(&port, "x").unwrap_err(),
        "ssh configuration: bad port `abc` for x"
    );
}

#[test]
fn every_refusal_names_what_is_wrong() {
    let d = Dir::new();
    let refused = |name: &str, text: &str| {
        let cfg = d.write(name, text);
        builtin(&cfg, "x").unwrap_err()
    };
    assert_eq!(
        refused("strict", "StrictHostKeyChecking maybe\n"),
        "ssh configuration: StrictHostKeyChecking `maybe` for x: expected one of: yes, accept-new, no"
    );
    assert_eq!(
        refused("lone", "IdentityFile /k/%\n"),
        "ssh configuration: a lone % at the end of IdentityFile `/k/%`"
    );
    assert_eq!(
        refused("brace", "IdentityFile ${HOME/k\n"),
        "ssh configuration: unterminated ${ in IdentityFile `${HOME/k`"
    );
    assert!(refused("empty", "Match\n").ends_with(":1: Match without criteria"));
    assert!(refused("arg", "Match host\n").ends_with(":1: Match host needs an argument"));
    assert!(refused("quote", "User \"a\n").ends_with(":1: unterminated \"quote"));
    assert!(
        refused("pattern", "Include \"/tmp/[\"\n").contains(":1: bad Include pattern `/tmp/[`: "),
    );
    let missing = d.path("missing");
    assert!(builtin(&missing, "x")
        .unwrap_err()
        .starts_with(&format!("cannot read {}: ", missing.display())));
    // StrictHostKeyChecking is read case-insensitively, as by OpenSSH.
    let upper = d.write("upper", "StrictHostKeyChecking Accept-New\n");
    assert_eq!(
        builtin(&upper, "x").unwrap().strict,
        StrictHostKeys::AcceptNew
    );
}

/// OpenSSH's own refusal of a configuration is passed on with what it said.
#[test]
fn openssh_refusals_are_passed_on() {
    let Some(ssh) = find_ssh() else {
        eprintln!("SKIPPED: OpenSSH's ssh is not installed");
        return;
    };
    let d = Dir::new();
    let cfg = d.write("config", "Host x\n  Port abc\n");
    let e = ask_openssh(&ssh, Some(&cfg), "x").unwrap_err();
    assert!(
        e.starts_with("the ssh configuration cannot be read (ssh -G x): "),
        "{e}"
    );
    assert!(e.contains("Bad port 'abc'"), "{e}");
    assert!(!e.contains("Pseudo-terminal"), "{e}");
    assert_eq!(
        ask_openssh(&ssh, Some(&cfg), "-oProxyCommand=x").unwrap_err(),
        "`-oProxyCommand=x` is not a host name"
    );
}

#[test]
fn openssh_output_is_read() {
    let s = parse_openssh_output(
        "user deploy\nhostname 10.0.0.1\nport 2222\nidentityfile ~/.ssh/a\nidentityfile /b %h\n\
         userknownhostsfile /kh1 /kh2\nstricthostkeychecking accept-new\nproxyjump a@b:2,c\n",
    );
    let t = finish(s, None, "web").unwrap();
    assert_eq!((t.user.as_str(), t.port), ("deploy", 2222));
    assert_eq!(
        t.identity_files,
        [home().join(".ssh/a"), PathBuf::from("/b 10.0.0.1")]
    );
    assert_eq!(
        t.known_hosts,
        [PathBuf::from("/kh1"), PathBuf::from("/kh2")]
    );
    assert_eq!(t.strict, StrictHostKeys::AcceptNew);
    assert_eq!(t.proxy_jump.as_deref(), Some("a@b:2"));
}

/// The same configurations read by our reader and by OpenSSH's `ssh -G`
/// give the same target.
#[test]
fn the_builtin_reader_agrees_with_openssh() {
    let Some(ssh) = find_ssh() else {
        eprintln!("SKIPPED: OpenSSH's ssh is not installed, nothing to compare with");
        return;
    };
    let d = Dir::new();
    let me = local_user();
    d.write(
        "inc/a.conf",
        "Host inc*\n  HostName %h.internal\n  User incuser\n",
    );
    d.write("inc/b.conf", "Host incb\n  Port 2201\n");
    let corpus = [
        "Host web? !web9\n  HostName 10.0.0.1\n  Port 2222\nHost *\n  User deploy\n".to_string(),
        "Include \"$DIR/inc/*.conf\"\nHost *\n  Port 22\n".into(),
        format!(
            "Host alias\n  HostName real.example.com\n\
             Match host real.example.com originalhost alias\n  User viaalias\n\
             Match !host *.example.com user {me}\n  Port 2022\n\
             Match exec \"test %h = real.example.com\"\n  Port 2023\n"
        ),
        "Host=web1\n  HostName = %h.example.com\n  User=\"quoted user\"\n  StrictHostKeyChecking no\n".into(),
        "Match originalhost web1,!web2\n  HostKeyAlias a1\nMatch final\n  User finaluser\n".into(),
        "Host *\n  ProxyJump j1,j2\n  StrictHostKeyChecking accept-new\n".into(),
        "Host web1\n  Include \"$DIR/inc/b.conf\"\nHost incb\n  Port 2\n".into(),
        // A token HostName does not take: both refuse.
        "Host web1\n  HostName 127.0.0.%n\n".into(),
    ];
    let hosts = ["web1", "web2", "web9", "inca", "incb", "alias", "other"];
    let mut agreed = 0;
    for (i, text) in corpus.iter().enumerate() {
        let cfg = d.write(
            &format!("c{i}"),
            &format!("{text}\nHost *\n  IdentityFile /id/%h\n  UserKnownHostsFile /kh\n"),
        );
        for host in hosts {
            let ours = builtin(&cfg, host);
            let theirs =
                ask_openssh(&ssh, Some(&cfg), host).and_then(|s| finish(s, Some(&cfg), host));
            match (&ours, &theirs) {
                // Both refuse it (the messages are each reader's own).
                (Err(_), Err(_)) => {}
                _ => {
                    assert_eq!(ours, theirs, "config {i}:\n{text}\nhost {host}");
                    agreed += 1;
                }
            }
        }
    }
    assert!(agreed > 50, "only {agreed} targets compared");
}
