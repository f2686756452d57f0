//! Configuration errors as reports: conversions, cycles of the root graph,
//! errors of `configure`.

use super::*;

pub(crate) fn known_attributes(c: &dyn DynComponent) -> String {
    let names: Vec<_> = c.attributes().iter().map(|a| a.name).collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

pub(crate) fn conversion_report(
    host: &str,
    crumbs: &str,
    key: &str,
    e: &crate::component::ConversionError,
    location: Option<&str>,
    info: &crate::component::AttributeInfo,
) -> Report {
    let mut r = Report::new(e.message.clone(), order::CONVERSION)
        .field("Attribute", format!("{crumbs}.{key}"))
        .field(
            "Conversion",
            e.conversion
                .clone()
                .unwrap_or_else(|| format!("{}(...)", info.type_name)),
        );
    if let Some(l) = location {
        r = r.field("Location", l);
    }
    r.on_host(host)
        .sort_by(vec![host.to_string(), crumbs.to_string(), key.to_string()])
}

/// A root as messages name it: its name, with the host when the name
/// alone is ambiguous.
pub(crate) fn root_label(roots: &[Root], id: RootId) -> String {
    let r = &roots[id];
    if roots.iter().filter(|o| o.name == r.name).count() > 1 {
        format!("{} ({})", r.name, r.host)
    } else {
        r.name.clone()
    }
}

/// batou's cycle report: every root of a cycle with what it depends on.
pub(crate) fn cycle_report(roots: &[Root], edges: &BTreeSet<(RootId, RootId)>) -> Option<Report> {
    let mut graph = petgraph::graph::DiGraph::<RootId, ()>::new();
    let nodes: Vec<_> = (0..roots.len()).map(|i| graph.add_node(i)).collect();
    for (before, after) in edges {
        graph.add_edge(nodes[*after], nodes[*before], ());
    }
    let mut lines = Vec::new();
    let mut sccs: Vec<Vec<RootId>> = petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut ids: Vec<RootId> = c.iter().map(|n| graph[*n]).collect();
            ids.sort_by_key(|i| root_label(roots, *i));
            ids
        })
        .collect();
    if sccs.is_empty() {
        return None;
    }
    sccs.sort();
    for scc in &sccs {
        for &id in scc {
            lines.push(format!("{} depends on", root_label(roots, id)));
            let mut deps: Vec<String> = edges
                .iter()
                .filter(|(b, a)| *a == id && scc.contains(b))
                .map(|(b, _)| root_label(roots, *b))
                .collect();
            deps.sort();
            for d in deps {
                lines.push(format!("        {d}"));
            }
        }
    }
    let mut r = Report::new("Found dependency cycle", order::CYCLE);
    r.details = lines;
    Some(r)
}

/// A component's configure failed. `added_at` is the user's line that
/// added it or the library component it belongs to (empty for roots).
pub(crate) fn configure_error_report(
    host: &str,
    root: &str,
    crumbs: &str,
    added_at: &str,
    e: Error,
) -> Report {
    let report = configure_error_kind_report(host, root, crumbs, e);
    if added_at.is_empty() {
        report
    } else {
        report.field("Added at", added_at)
    }
}

fn configure_error_kind_report(host: &str, root: &str, crumbs: &str, e: Error) -> Report {
    let sort = vec![host.to_string(), crumbs.to_string()];
    match e {
        Error::Template(t) => Report::new("Error while rendering template", order::CONFIGURATION)
            .field(
                "Template",
                t.line.map_or(t.name.clone(), |l| format!("{}:{l}", t.name)),
            )
            .field("Message", t.message)
            .field("Component", crumbs)
            .on_host(host)
            .sort_by(sort),
        Error::Conversion(c) => Report::new(c.message, order::CONVERSION)
            .field("Component", crumbs)
            .field("Conversion", c.conversion.unwrap_or_default())
            .on_host(host)
            .sort_by(sort),
        other => {
            let mut r = Report::new(format!("{root}: {other}"), order::CONFIGURATION)
                .field("Component", crumbs);
            if let Some(l) = other.location() {
                r = r.field("Source", l);
            }
            r.on_host(host).sort_by(sort)
        }
    }
}
