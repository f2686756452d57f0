//! The deploy walk: one root's tree post-order, enter → verify → update →
//! exit, `before-update` handlers, events for changed and slow components.

use super::*;

/// Deploys a configured root tree; `Ok(true)` if anything changed.
pub(crate) fn deploy_tree(root: &Node, run: &DeployRun) -> Result<bool, Vec<Line>> {
    // Components that handle `before-update`, in pre-order.
    let mut order = Vec::new();
    preorder(root, &mut order);
    let handlers: Vec<(usize, EventScope)> = order
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let c = n.component.lock().unwrap_or_else(|e| e.into_inner());
            c.dyn_before_update_scope().map(|s| (i, s))
        })
        .collect();
    let tree = Tree { order, handlers };
    // Files written in a batch are synced together, and put in place
    // before anything could look at them (see `prepare_for`).
    let (result, settled) = crate::safe_fs::batched(|| deploy_node(root, run, &tree, false));
    match (result, settled) {
        (Err(lines), _) => Err(lines),
        (Ok(_), Err(e)) => Err(error_lines(
            &root.crumbs,
            Error::io("completing the deployment", e),
        )),
        (Ok(changed), Ok(())) => Ok(changed),
    }
}

/// Before a component that may look at `footprint` runs: what the walk
/// knows of the disk is forgotten if it may change anything, and the
/// batched files it could see are put in place.
fn prepare_for(run: &DeployRun, footprint: &crate::component::Footprint) -> crate::Result<()> {
    use crate::component::Footprint;
    if *footprint == Footprint::Anything {
        run.stats.clear();
    }
    if !crate::safe_fs::has_deferred() {
        return Ok(());
    }
    match footprint {
        Footprint::Anything => crate::safe_fs::settle(),
        Footprint::File(path) => crate::safe_fs::settle_touching(std::slice::from_ref(path)),
        Footprint::Files(paths) => crate::safe_fs::settle_touching(paths),
    }
    .map_err(|e| Error::io("completing the files written so far", e))
}

pub(crate) fn preorder<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    out.push(node);
    for c in &node.children {
        preorder(c, out);
    }
}

/// A root's nodes in pre-order and its `before-update` handlers.
pub(crate) struct Tree<'n> {
    order: Vec<&'n Node>,
    handlers: Vec<(usize, EventScope)>,
}

impl Tree<'_> {
    /// batou's `before-update` event: `source` (locked by the caller, who
    /// passes its component) is about to be updated. Every handler of the
    /// root's tree is called (`precursor`: only those after `source`).
    fn fire_before_update(
        &self,
        source: &Node,
        source_component: &mut dyn DynComponent,
        run: &DeployRun,
    ) -> crate::Result<()> {
        let Some(at) = self.order.iter().position(|n| std::ptr::eq(*n, source)) else {
            return Ok(());
        };
        if !self.handlers.is_empty() && !run.predict {
            prepare_for(run, &crate::component::Footprint::Anything)?;
        }
        for &(i, scope) in &self.handlers {
            if scope == EventScope::Precursor && i <= at {
                continue;
            }
            let target = self.order[i];
            if run.predict {
                (run.sink)(crate::events::Event::BeforeUpdate {
                    host: run.host_name.to_string(),
                    root: run.root_name.to_string(),
                    handler: target.crumbs.clone(),
                });
                continue;
            }
            let mut cx = Deploy {
                run,
                workdir: &target.workdir,
                defdir: &target.defdir,
                crumbs: &target.crumbs,
                children: &target.children,
                earlier_siblings_changed: false,
                pending: std::cell::Cell::new(false),
                diff: RefCell::new(None),
            };
            if std::ptr::eq(target, source) {
                source_component.dyn_before_update(&mut cx, &source.crumbs)?;
            } else if let Ok(mut c) = target.component.try_lock() {
                c.dyn_before_update(&mut cx, &source.crumbs)?;
            }
        }
        Ok(())
    }
}

/// One deployment of one root on one host.
pub struct DeployRun<'a> {
    pub(crate) env: &'a ModelEnv,
    pub(crate) root_name: &'a str,
    pub(crate) host_name: &'a str,
    pub(crate) host_fqdn: &'a str,
    pub(crate) predict: bool,
    pub(crate) sink: &'a (dyn Fn(crate::events::Event) + Sync),
    /// What components of the walk found on disk (see [`StatCache`]).
    pub(crate) stats: StatCache,
}

/// `lstat` results of a walk, shared by the checks of components that
/// work on files (Presence, Mode and Content look at the same file), and
/// forgotten whenever something may have changed on disk: after every
/// `update`, and around every component whose footprint is
/// [`Footprint::Anything`](crate::component::Footprint::Anything).
///
/// Only the last [`StatCache::KEEP`] paths are remembered: the checks
/// that share a file run one after the other, and a path looked at again
/// later only costs another `lstat`. A short list compared byte by byte
/// is cheaper than hashing every path into a map that grows with the
/// root.
#[derive(Debug, Default)]
pub(crate) struct StatCache(std::sync::Mutex<Recent>);

/// The remembered `lstat` results, oldest first.
#[derive(Debug, Default)]
struct Recent(std::collections::VecDeque<(std::ffi::OsString, Found)>);

/// An `lstat` result (an error as its kind and OS code: errors do not
/// clone).
type Found = Result<std::fs::Metadata, (std::io::ErrorKind, Option<i32>)>;

impl StatCache {
    /// How many paths are remembered.
    pub(crate) const KEEP: usize = 4;

    /// `fs::symlink_metadata(path)`, remembered.
    pub(crate) fn symlink_metadata(
        &self,
        path: &std::path::Path,
    ) -> std::io::Result<std::fs::Metadata> {
        let mut recent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = path.as_os_str();
        let found = match recent.0.iter().rev().find(|(k, _)| k == key) {
            Some((_, found)) => found.clone(),
            None => {
                let found =
                    std::fs::symlink_metadata(path).map_err(|e| (e.kind(), e.raw_os_error()));
                recent.remember(key, found.clone());
                found
            }
        };
        found.map_err(|(kind, code)| match code {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => kind.into(),
        })
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clear();
    }
}

impl Recent {
    /// Keeps `found` for `key`, in place of the oldest entry when full
    /// (whose buffer is reused).
    fn remember(&mut self, key: &std::ffi::OsStr, found: Found) {
        let mut name = match self.0.len() {
            n if n < StatCache::KEEP => std::ffi::OsString::new(),
            _ => self.0.pop_front().map(|(name, _)| name).unwrap_or_default(),
        };
        name.clear();
        name.push(key);
        self.0.push_back((name, found));
    }
}

/// Deploys a tree; returns whether anything changed, or the lines of the
/// error report.
pub(crate) fn deploy_node(
    node: &Node,
    run: &DeployRun,
    tree: &Tree,
    earlier_siblings_changed: bool,
) -> Result<bool, Vec<Line>> {
    let started = Tick::now();
    // The workdir exists before the first sub-component runs a command in
    // it: made by a root and by a component that chose its own (a
    // sub-component sharing its parent's finds it made). Predicting changes
    // nothing on disk, not even the workdir.
    let created = if run.predict || !node.makes_workdir {
        Ok(())
    } else {
        std::fs::create_dir_all(&node.workdir)
    };
    if let Err(e) = created {
        return Err(error_lines(
            &node.crumbs,
            Error::io(format!("creating workdir {}", node.workdir.display()), e),
        ));
    }
    let mut sub_changed = false;
    for child in &node.children {
        sub_changed |= deploy_node(child, run, tree, sub_changed)?;
    }
    let sub = (!node.children.is_empty()).then(|| started.seconds());
    let mut component = node.component.lock().unwrap_or_else(|e| e.into_inner());
    let crumbs = &node.crumbs;
    let mut cx = Deploy {
        run,
        workdir: &node.workdir,
        defdir: &node.defdir,
        crumbs,
        children: &node.children,
        earlier_siblings_changed,
        pending: std::cell::Cell::new(true),
        diff: RefCell::new(None),
    };
    let mut verify_time = None;
    let mut update_time = None;
    let (anything, prepared) = {
        let footprint = component.dyn_footprint();
        let anything = footprint == crate::component::Footprint::Anything;
        (anything, prepare_for(run, &footprint))
    };
    let outcome = (|| -> crate::Result<bool> {
        prepared?;
        component.dyn_enter(&mut cx)?;
        let t = Tick::now();
        let verified = component.dyn_verify(&mut cx);
        verify_time = Some(t.seconds());
        let needed = match verified {
            Ok(()) => false,
            Err(Error::UpdateNeeded(_)) => true,
            Err(e) => return Err(e),
        };
        if needed {
            cx.send_changed();
            tree.fire_before_update(node, component.as_mut(), run)?;
            if !run.predict {
                let t = Tick::now();
                let updated = component.dyn_update(&mut cx);
                run.stats.clear();
                updated?;
                update_time = Some(t.seconds());
            }
        }
        Ok(needed)
    })();
    let exited = component.dyn_exit(&mut cx);
    if anything {
        run.stats.clear();
    }
    let needed = match (outcome, exited) {
        (Err(e), _) | (Ok(_), Err(e)) => return Err(error_lines(crumbs, e)),
        (Ok(n), Ok(())) => n,
    };
    cx.pending.set(false);
    let total = started.seconds();
    if verify_time.unwrap_or(0.0) > 1.0 || update_time.unwrap_or(0.0) > 1.0 || total > 10.0 {
        (run.sink)(crate::events::Event::ComponentSlow {
            host: run.host_name.to_string(),
            root: run.root_name.to_string(),
            component: crumbs.clone(),
            total,
            verify: verify_time,
            update: update_time,
            sub,
        });
    }
    let changed = needed || sub_changed;
    node.changed
        .store(changed, std::sync::atomic::Ordering::Relaxed);
    Ok(changed)
}

/// A reading of the kernel's coarse monotonic clock (a few milliseconds of
/// resolution, a fraction of the cost of the precise one): the walk reads
/// it several times per component only to tell those slower than a second.
#[derive(Debug, Clone, Copy)]
struct Tick(libc::timespec);

impl Tick {
    fn now() -> Tick {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the struct we own; this clock exists
        // on every Linux since 2.6.32 (on failure the reading stays zero).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
        Tick(now)
    }

    /// Seconds from this reading to now.
    fn seconds(self) -> f64 {
        let now = Tick::now().0;
        (now.tv_sec - self.0.tv_sec) as f64 + (now.tv_nsec - self.0.tv_nsec) as f64 / 1e9
    }
}

pub(crate) fn error_lines(crumbs: &str, e: Error) -> Vec<Line> {
    let red = Style::bold_color(Color::Red);
    let mut lines = match e {
        Error::Cmd(c) => c.report_lines(),
        Error::Template(t) => vec![
            Line::new("ERROR: Error while rendering template", red),
            Line::new(
                crate::output::tabular_text("Template", &t.name),
                Style::color(Color::Red),
            ),
            Line::new(
                crate::output::tabular_text("Message", &t.message),
                Style::color(Color::Red),
            ),
        ],
        other => vec![Line::new(format!("ERROR: {other}"), red)],
    };
    lines.push(Line::new(
        crate::output::tabular_text("Component", crumbs),
        Style::color(Color::Red),
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_cache_remembers_the_last_paths_and_forgets_on_clear() {
        let d = tempfile::tempdir().unwrap();
        let paths: Vec<_> = (0..=StatCache::KEEP)
            .map(|i| d.path().join(format!("f{i}")))
            .collect();
        for p in &paths {
            std::fs::write(p, b"x").unwrap();
        }
        let cache = StatCache::default();
        for p in &paths {
            assert_eq!(cache.symlink_metadata(p).unwrap().len(), 1);
        }
        // Changed behind the cache's back: the recent paths answer from
        // memory, the oldest (overwritten) is looked at again.
        for p in &paths {
            std::fs::write(p, b"xy").unwrap();
        }
        assert_eq!(cache.symlink_metadata(&paths[0]).unwrap().len(), 2);
        assert_eq!(
            cache
                .symlink_metadata(&paths[StatCache::KEEP])
                .unwrap()
                .len(),
            1
        );
        let missing = d.path().join("missing");
        let e = cache.symlink_metadata(&missing).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        std::fs::write(&missing, b"").unwrap();
        assert!(cache.symlink_metadata(&missing).is_err(), "remembered");
        cache.clear();
        assert!(cache.symlink_metadata(&missing).is_ok());
        assert_eq!(
            cache
                .symlink_metadata(&paths[StatCache::KEEP])
                .unwrap()
                .len(),
            2
        );
    }
}
