//! The order of a deployment as a state machine: which roots may start
//! now, given what finished. It knows nothing of agents or output, so it is
//! tested on its own.
//!
//! A root is ready when every root it depends on is done. Skipped roots
//! (ignored, or on an ignored host) count as done at once. At most `jobs`
//! roots run at a time; the first failure stops new work while running
//! roots finish.
//!
//! ```
//! use batou::deploy::schedule::{Scheduler, Ready};
//! // b depends on a.
//! let mut s = Scheduler::new(vec![vec![], vec![0]], vec![None, None], 2);
//! assert_eq!(s.ready(), [Ready::Start(0)]);
//! s.finished(0, true);
//! assert_eq!(s.ready(), [Ready::Start(1)]);
//! s.finished(1, true);
//! assert!(s.is_idle() && s.stuck().is_empty());
//! ```

/// Index of a root in the model.
pub type RootId = usize;

pub use crate::events::SkipReason;

/// What to do with a root now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Deploy it.
    Start(RootId),
    /// Report it skipped (it counts as done).
    Skip(RootId, SkipReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
    Failed,
}

/// The deployment's progress.
#[derive(Debug)]
pub struct Scheduler {
    dependencies: Vec<Vec<RootId>>,
    skip: Vec<Option<SkipReason>>,
    state: Vec<State>,
    jobs: usize,
    running: usize,
    failed: bool,
}

impl Scheduler {
    /// A scheduler for roots with these dependencies (indices of roots
    /// that must be done first) and skip reasons, `jobs` at a time.
    pub fn new(dependencies: Vec<Vec<RootId>>, skip: Vec<Option<SkipReason>>, jobs: usize) -> Self {
        let n = dependencies.len();
        Scheduler {
            dependencies,
            skip,
            state: vec![State::Waiting; n],
            jobs: jobs.max(1),
            running: 0,
            failed: false,
        }
    }

    fn deps_done(&self, id: RootId) -> bool {
        self.dependencies[id]
            .iter()
            .all(|d| self.state[*d] == State::Done)
    }

    /// The roots to start or skip now, in root order; started roots count
    /// as running until [`Self::finished`].
    pub fn ready(&mut self) -> Vec<Ready> {
        let mut out = Vec::new();
        let mut progress = true;
        while progress && !self.failed {
            progress = false;
            for id in 0..self.state.len() {
                if self.state[id] != State::Waiting || !self.deps_done(id) {
                    continue;
                }
                if let Some(why) = self.skip.get(id).copied().flatten() {
                    self.state[id] = State::Done;
                    out.push(Ready::Skip(id, why));
                    progress = true;
                    continue;
                }
                if self.running >= self.jobs {
                    break;
                }
                self.state[id] = State::Running;
                self.running += 1;
                out.push(Ready::Start(id));
            }
        }
        out
    }

    /// A running root finished; a failure stops new work.
    pub fn finished(&mut self, id: RootId, ok: bool) {
        if self.state.get(id) != Some(&State::Running) {
            return;
        }
        self.running -= 1;
        self.state[id] = if ok { State::Done } else { State::Failed };
        self.failed |= !ok;
    }

    /// Whether the root is running.
    pub fn is_running(&self, id: RootId) -> bool {
        self.state.get(id) == Some(&State::Running)
    }

    /// Nothing runs: the deployment is over unless [`Self::ready`] has more.
    pub fn is_idle(&self) -> bool {
        self.running == 0
    }

    /// Whether any root failed.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Roots that never ran although nothing failed (a dependency that
    /// cannot be satisfied).
    pub fn stuck(&self) -> Vec<RootId> {
        if self.failed {
            return Vec::new();
        }
        (0..self.state.len())
            .filter(|i| self.state[*i] != State::Done)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_jobs_bound_the_parallelism() {
        // 0 and 1 are independent, 2 needs both, 3 needs 2.
        let mut s = Scheduler::new(vec![vec![], vec![], vec![0, 1], vec![2]], vec![None; 4], 1);
        assert_eq!(s.ready(), [Ready::Start(0)]);
        assert!(s.ready().is_empty(), "one job at a time");
        s.finished(0, true);
        assert_eq!(s.ready(), [Ready::Start(1)]);
        s.finished(1, true);
        assert_eq!(s.ready(), [Ready::Start(2)]);
        s.finished(2, true);
        assert_eq!(s.ready(), [Ready::Start(3)]);
        s.finished(3, true);
        assert!(s.is_idle() && !s.has_failed() && s.stuck().is_empty());

        let mut s = Scheduler::new(vec![vec![], vec![], vec![0, 1]], vec![None; 3], 3);
        assert_eq!(s.ready(), [Ready::Start(0), Ready::Start(1)]);
        s.finished(1, true);
        assert!(s.ready().is_empty(), "2 still waits for 0");
        s.finished(0, true);
        assert_eq!(s.ready(), [Ready::Start(2)]);
    }

    #[test]
    fn skipped_roots_count_as_done_at_once() {
        let mut s = Scheduler::new(
            vec![vec![], vec![0], vec![1]],
            vec![
                Some(SkipReason::HostIgnored),
                Some(SkipReason::ComponentIgnored),
                None,
            ],
            1,
        );
        assert_eq!(
            s.ready(),
            [
                Ready::Skip(0, SkipReason::HostIgnored),
                Ready::Skip(1, SkipReason::ComponentIgnored),
                Ready::Start(2)
            ]
        );
    }

    #[test]
    fn the_first_failure_stops_new_work_but_running_roots_finish() {
        let mut s = Scheduler::new(vec![vec![], vec![], vec![0]], vec![None; 3], 2);
        assert_eq!(s.ready(), [Ready::Start(0), Ready::Start(1)]);
        s.finished(1, false);
        assert!(s.has_failed());
        assert!(s.is_running(0) && !s.is_idle());
        s.finished(0, true);
        assert!(s.ready().is_empty(), "2 is not started after a failure");
        assert!(s.is_idle());
        assert!(s.stuck().is_empty(), "a failure is not a stuck schedule");
    }

    #[test]
    fn unsatisfiable_dependencies_are_stuck() {
        // 1 depends on itself (a cycle the model would have reported).
        let mut s = Scheduler::new(vec![vec![], vec![1]], vec![None; 2], 2);
        assert_eq!(s.ready(), [Ready::Start(0)]);
        s.finished(0, true);
        assert!(s.ready().is_empty());
        assert_eq!(s.stuck(), [1]);
        // Finishing a root that is not running changes nothing.
        s.finished(1, false);
        assert!(!s.has_failed());
    }
}
