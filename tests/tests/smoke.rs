use batou_tests::*;

#[test]
fn generated_project_deploys() {
    let p = Project::generate("smoke");
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    println!("{}\n{}", stdout(&out), stderr(&out));
    assert!(out.status.success());
}
