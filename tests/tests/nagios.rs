//! nagios: checks of a host's components rendered for the Nagios server
//! and for NRPE, in batou's layout.

use batou_tests::*;

const WEB: &str = r##"
use batou::prelude::*;
use batou_stdlib::nagios::ServiceCheck;

#[component]
pub struct Web;

impl Component for Web {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.add(
            ServiceCheck::new("http")
                .command("http")
                .args("-H localhost -u /login.html")
                .depends_on("localhost", "Supervisor"),
        );
        cx.add(ServiceCheck::new("Disk space, root").nrpe(true).command("check_disk").args("-w 10%"));
        Ok(())
    }
}
"##;

#[test]
fn checks_are_rendered_for_the_server_and_nrpe() {
    let p = Project::generate("nagios-checks");
    p.write("components/web/component.rs", WEB);
    p.write(
        "environments/local/environment.cfg",
        "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = web, nagiosserver, nrpehost\n\n\
         [component:nagiosserver]\nstatic = # static part\n\n[component:nrpehost]\npath = nrpe.cfg\n",
    );
    p.build_ok();
    let out = p.batou(&["deploy", "local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        p.read("work/nagiosserver/nagios-server.cfg"),
        "# Generated from template; don't edit manually!\n\n#\n# Disk space_ root\n#\n\
         define service {\n    use         generic-service\n    host_name   localhost\n    \
         service_description Disk space_ root\n    check_command check_nrpe!disk_space__root\n    \
         servicegroups nrpe\n}\n\n#\n# http\n#\ndefine service {\n    use         generic-service\n    \
         host_name   localhost\n    service_description http\n    \
         check_command http!-H localhost -u /login.html\n    servicegroups direct\n}\n\n\
         define servicedependency {\n    use generic-servicedependency\n    host_name localhost\n    \
         dependent_host_name localhost\n    service_description Supervisor\n    \
         dependent_service_description http\n}\n\n# static part"
    );
    assert_eq!(
        p.read("work/nrpehost/nrpe.cfg"),
        "# Generated from template; don't edit manually!\ncommand[disk_space__root]=check_disk -w 10%\n"
    );
    let again = p.batou(&["deploy", "local"]);
    assert!(
        !stdout(&again).contains("🚀"),
        "converged:\n{}",
        stdout(&again)
    );
}
