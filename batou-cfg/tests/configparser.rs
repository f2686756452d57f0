//! The parse of tricky cfg files equals what Python's configparser (a
//! `RawConfigParser` with case-preserving keys, as batou makes it) reads
//! from them: the real python3 reads each file in the test.

use batou_cfg::CfgFile;
use std::process::Command;

/// Files batou users have: comments inside host lists, indented
/// comments, `:` delimiters, empty lines in values, odd headers.
const CORPUS: &[&str] = &[
    "[hosts]\nlocalhost =\n    hello\n#    zope\n    tick\n",
    "[hosts]\nlocalhost =\n    hello\n    # zope\n    ; tick\n    tock\n",
    "# leading comment\n; another\n[environment]\nconnect_method = local\nservice_user: deploy\n",
    "[environment]\nhost_domain = example.com # not a comment\nbranch=main\n",
    "[component:app]\nlines =\n    first\n\n    third\n\n\n[next]\na = 1\n",
    "[component:app]\nurl = http://example.com:8080/x\ntimeout:5\nempty =\n",
    "[component:app]\n  indented_key = v\n    continued\nnext = w\n",
    "[a] trailing text\nk = v\n[b]]\nk = w\n",
    "[host:web1]\ncomponents =\n\tnginx\n\t# php\n\tapp\ndata-role = front\n",
    "[environment]\nkey = value = with = equals\nother : colon : too\n",
    "[x]\nk =\n\n  v after an empty line\n",
    "[x]\nCamelCase = Kept\nUPPER = 1\n",
];

const READ: &str = r#"
import configparser, json, sys
c = configparser.RawConfigParser()
c.optionxform = lambda o: o
c.read_string(sys.stdin.read())
# batou strips every value it reads (configparser keeps a leading newline).
print(json.dumps([[s, [[k, c.get(s, k).strip()] for k in c.options(s)]] for s in c.sections()]))
"#;

fn python_parse(text: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(READ)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "configparser refused {text:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn our_parse(text: &str) -> serde_json::Value {
    let cfg = CfgFile::parse("t.cfg", text).unwrap_or_else(|e| panic!("{e} in {text:?}"));
    serde_json::Value::Array(
        cfg.sections
            .iter()
            .map(|s| {
                serde_json::json!([
                    s.name,
                    s.entries
                        .iter()
                        .map(|e| serde_json::json!([e.key, e.value]))
                        .collect::<Vec<_>>()
                ])
            })
            .collect(),
    )
}

#[test]
fn tricky_files_parse_as_configparser_reads_them() {
    for text in CORPUS {
        assert_eq!(our_parse(text), python_parse(text), "{text:?}");
    }
}

#[test]
fn lines_point_at_keys_past_comments_and_continuations() {
    let cfg = CfgFile::parse(
        "t.cfg",
        "[hosts]\nlocalhost =\n    hello\n#    zope\n    tick\nother = x\n",
    )
    .unwrap();
    let e = &cfg.sections[0].entries;
    assert_eq!((e[0].line, e[1].line), (2, 6));
    assert_eq!(e[0].value, "hello\ntick");
}

#[test]
fn lines_configparser_refuses_are_errors_with_their_line() {
    for (text, line, message) in [
        (
            "[hosts]\nlocalhost = tick\n[broken\n",
            3,
            "expected `key = value` or a `[section]` header, found \"[broken\"",
        ),
        ("[hosts]\n= tick\n", 2, "a value without a key: \"= tick\""),
        (
            "[hosts]\njust words\n",
            2,
            "expected `key = value` or a `[section]` header, found \"just words\"",
        ),
    ] {
        let err = CfgFile::parse("t.cfg", text).unwrap_err();
        assert_eq!(
            (err.line, err.message.as_str()),
            (line, message),
            "{text:?}"
        );
    }
}
