//! The pool that does the CPU-heavy checks in parallel: certificate
//! chains and signatures of an import's rows and of children's pages
//! (rayon's global pool).
//!
//! Its threads run at a lower scheduling priority. They still get every
//! idle cycle, but the threads on the serial path get a core first when
//! they need one: the async runtime's (the front ends, the apply loop) and
//! SQLite's writer. At a root pulling many children at once, the one write
//! transaction at a time is the serial path every record waits for
//! (`bench federation` reports how busy it is); at equal priority it waited
//! for the checks of the pages queued behind it. (The ingest as a whole is
//! bound by the CPU: BENCHMARKS §4.)

use tracing::debug;

/// How much lower than the process the pool's threads run (nice steps).
const LOWER_BY: i32 = 10;

/// Starts the global pool with its threads at a lower priority. Once per
/// process; later calls (tests starting several nodes) change nothing.
pub fn init_worker_pool() {
    let built = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("ccdir-check-{i}"))
        .start_handler(|_| lower_priority())
        .build_global();
    if let Err(e) = built {
        debug!(error = %e, "the worker pool was already started");
    }
}

/// Lowers the calling thread's priority by [`LOWER_BY`] (at most to 19).
/// On Linux the nice value belongs to the thread, so only this thread is
/// affected; elsewhere it would be the whole process, so nothing is done.
#[cfg(target_os = "linux")]
fn lower_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let lowered = getpriority_process(None)
        .and_then(|now| setpriority_process(None, (now + LOWER_BY).min(19)));
    if let Err(e) = lowered {
        debug!(error = %e, "could not lower a worker thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::getpriority_process;

    #[test]
    fn a_worker_thread_runs_at_a_lower_priority_than_the_others() {
        let here = getpriority_process(None).unwrap();
        let worker = std::thread::spawn(|| {
            super::lower_priority();
            getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(worker, (here + super::LOWER_BY).min(19));
        // Only the worker: this thread keeps its priority.
        assert_eq!(getpriority_process(None).unwrap(), here);
    }
}
