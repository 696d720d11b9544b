//! Work spread over every core for the little that start-up cannot otherwise make faster:
//! reading thousands of targets and spawning their tasks.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `work` on each job, on as many threads as there are cores (this one among them,
/// and no more than one per `at_least` jobs), and returns the results in the order of the
/// jobs.
pub(crate) fn on_every_core<J: Sync, T: Send>(
    jobs: &[J],
    at_least: usize,
    work: impl Fn(&J) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len() / at_least.max(1));
    if threads <= 1 {
        return jobs.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let run = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(index) else {
                return done;
            };
            done.push((index, work(job)));
        }
    };
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        // A thread the system refuses leaves its share to the others.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("start-up-helper".into())
                    .spawn_scoped(scope, run)
                    .ok()
            })
            .collect();
        let mut done = run();
        for helper in helpers {
            match helper.join() {
                Ok(theirs) => done.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_the_order_of_the_jobs() {
        let jobs: Vec<usize> = (0..1000).collect();
        let doubled = on_every_core(&jobs, 1, |job| job * 2);
        assert_eq!(doubled, (0..2000).step_by(2).collect::<Vec<_>>());
        assert_eq!(on_every_core(&jobs, 5000, |job| job + 1)[999], 1000);
        assert!(on_every_core(&[] as &[usize], 1, |job| *job).is_empty());
    }

    #[test]
    fn a_panic_in_a_job_is_the_callers() {
        let jobs: Vec<usize> = (0..100).collect();
        let outcome = std::panic::catch_unwind(|| {
            on_every_core(&jobs, 1, |job| {
                assert_ne!(*job, 57, "job 57");
                *job
            })
        });
        assert!(outcome.is_err());
    }
}
