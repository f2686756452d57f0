//! `batou graph ENV`: the configured model as Graphviz DOT — a cluster per
//! host, a node per root, an edge per resource dependency between two
//! roots, labelled with the resource keys.

use crate::model::Model;
use std::fmt::Write;

/// A DOT string for `dot -Tsvg`.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The model as a DOT digraph.
pub fn dot(model: &Model) -> String {
    let mut out = String::from("digraph batou {\n  rankdir=LR;\n  node [shape=box];\n");
    let mut hosts: Vec<&str> = model.roots.iter().map(|r| r.host.as_str()).collect();
    hosts.dedup();
    for (i, host) in hosts.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{i} {{\n    label={};", quote(host));
        for (id, root) in model.roots.iter().enumerate() {
            if root.host == *host {
                let style = if root.ignore || root.host_ignored {
                    ", style=dashed"
                } else {
                    ""
                };
                let _ = writeln!(out, "    r{id} [label={}{style}];", quote(&root.name));
            }
        }
        out.push_str("  }\n");
    }
    for ((from, to), keys) in &model.links {
        let label = keys.iter().cloned().collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "  r{from} -> r{to} [label={}];", quote(&label));
    }
    out.push_str("}\n");
    out
}
