//! Freeing what a short-lived process is about to give back anyway.
//!
//! An agent deploys each root once and ends soon after. Freeing a deployed
//! root's tree piece by piece (dozens of allocations per file) costs more
//! than checking the files did, while the process's end returns all its
//! memory to the system at once. [`drop_without_freeing`] runs every
//! `Drop` of a value (a component's temporary directory is still removed)
//! but keeps the memory: with the `allocator` feature (a default feature,
//! chosen by the deployment crate like the OpenPGP backend), batou's
//! [`Allocator`] is the global allocator, the system's, and skips the frees
//! of the thread that is dropping this way. Without the feature the value
//! is dropped as usual.
//!
//! ```
//! let tree = vec![String::from("a"), String::from("b")];
//! batou::alloc::drop_without_freeing(tree);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// This thread drops without freeing.
    static KEEPING: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, except that memory released by a thread inside
/// [`drop_without_freeing`] is kept until the process ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct Allocator;

// SAFETY: every call is passed to the system allocator unchanged, except
// deallocations that are skipped: keeping a block allocated is always sound.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !KEEPING.with(Cell::get) {
            // SAFETY: the caller's guarantees, passed on.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[cfg(feature = "allocator")]
#[global_allocator]
static GLOBAL: Allocator = Allocator;

/// Drops `value`, running every `Drop`, without giving its memory back
/// (see the [module](self)); also when a `Drop` panics.
pub fn drop_without_freeing<T>(value: T) {
    /// Ends the keeping when dropped, also while unwinding.
    struct Keeping(bool);
    impl Drop for Keeping {
        fn drop(&mut self) {
            KEEPING.with(|k| k.set(self.0));
        }
    }
    let _restore = Keeping(KEEPING.with(|k| k.replace(true)));
    drop(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the drops of its clones.
    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn every_drop_runs_and_freeing_resumes_after() {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tree: Vec<Counted> = (0..3).map(|_| Counted(drops.clone())).collect();
        drop_without_freeing(tree);
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(!KEEPING.with(Cell::get));
        // A panicking Drop ends the keeping too.
        struct Panics;
        impl Drop for Panics {
            fn drop(&mut self) {
                panic!("dropping");
            }
        }
        let caught = std::panic::catch_unwind(|| drop_without_freeing(Panics));
        assert!(caught.is_err());
        assert!(!KEEPING.with(Cell::get));
    }

    #[test]
    fn a_temporary_directory_is_still_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        drop_without_freeing(vec![dir]);
        assert!(!path.exists());
    }
}
