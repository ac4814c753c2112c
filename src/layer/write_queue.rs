//! Small file objects are handed to a writer thread once their checksum is known.
//!
//! The thread that parses the tar computes each buffered file's checksum itself (it needs it
//! at once for the tree and the tar-split), then queues the file here; a writer thread does
//! the rest — building libostree's content stream and the syscalls that store the object
//! (open, fallocate, write, xattr, link), which took about half of the parsing thread's time.
//! With decompression on a third thread, the import keeps both cores busy. An `archive`
//! repository gets one writer per core: there every object is also compressed, which is then
//! most of the work, and the writers compress it themselves ([`ArchiveStore`]) rather than
//! through libostree (a second writer made no difference for `bare-user`).
//!
//! Queued bytes are bounded by [`BUDGET`], so memory does not grow with the layer. The first
//! write error stops the queue: later pushes fail fast and [`WriteQueue::finish`] returns that
//! error, which explains anything that failed because of it.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

use ostree::Repo;

use crate::error::LayerError;
use crate::layer::archive_object::ArchiveStore;
use crate::layer::object::{FileObject, write_trusted};

/// Most bytes of file data queued and not yet written.
pub const BUDGET: usize = 8 << 20;
const JOBS_IN_FLIGHT: usize = 256;

/// Bytes in flight, and whether the writer gave up.
#[derive(Debug, Default)]
struct State {
    queued: usize,
    failed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means the other thread panicked; the counters stay usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sending side, owned by the parsing thread's object writer.
#[derive(Debug)]
pub struct WriteQueue {
    tx: SyncSender<FileObject>,
    shared: Arc<Shared>,
}

/// The writer threads' handles: join them with [`WriteQueue::finish`].
pub type Handle<'scope> = Vec<ScopedJoinHandle<'scope, Result<(), LayerError>>>;

/// Writer threads for `repo`: one per core (at least two) for an `archive` repository, where
/// every object is compressed (most of the import's work, so all cores share it), one
/// otherwise (there a second one only adds contention to the syscalls).
pub fn writers_for(repo: &Repo) -> usize {
    if repo.mode() == ostree::RepoMode::Archive {
        std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
    } else {
        1
    }
}

fn stopped() -> LayerError {
    LayerError::Read(std::io::Error::other("object writer stopped"))
}

impl WriteQueue {
    /// Starts the writer threads ([`writers_for`]) for `repo` (which must be in a
    /// transaction) inside `scope`.
    ///
    /// `Repo` is `Send` but not `Sync`: the thread gets its own reference. libostree itself
    /// writes content objects from worker threads (`write_content_async`, pulls), so writing
    /// from two threads into one transaction is how it is meant to be used.
    pub fn spawn<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        repo: &Repo,
    ) -> (WriteQueue, Handle<'scope>) {
        let (tx, rx) = sync_channel(JOBS_IN_FLIGHT);
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared::default());
        let archive = ArchiveStore::find(repo);
        let handles = (0..writers_for(repo))
            .map(|_| {
                let (rx, theirs, repo) = (Arc::clone(&rx), Arc::clone(&shared), repo.clone());
                let archive = archive.clone();
                scope.spawn(move || run(&repo, archive.as_ref(), &rx, &theirs))
            })
            .collect();
        (WriteQueue { tx, shared }, handles)
    }

    /// Queues `job`, waiting while the budget is spent.
    ///
    /// # Errors
    /// The writer thread failed or is gone; [`WriteQueue::finish`] has the reason.
    pub fn push(&self, job: FileObject) -> Result<(), LayerError> {
        let size = job.data.len();
        {
            let mut st = self.shared.lock();
            while !st.failed && st.queued > 0 && st.queued + size > BUDGET {
                st = self
                    .shared
                    .changed
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if st.failed {
                return Err(stopped());
            }
            st.queued += size;
        }
        self.tx.send(job).map_err(|_| stopped())
    }

    /// Closes the queue and waits until every queued object is written.
    ///
    /// # Errors
    /// The first write error.
    pub fn finish(self, handles: Handle<'_>) -> Result<(), LayerError> {
        drop(self.tx);
        let mut first = Ok(());
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(LayerError::Read(std::io::Error::other(
                    "object writer panicked",
                )))
            });
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// A writer thread: writes jobs until the queue closes; after an error only drains it.
fn run(
    repo: &Repo,
    archive: Option<&ArchiveStore>,
    rx: &Mutex<Receiver<FileObject>>,
    shared: &Shared,
) -> Result<(), LayerError> {
    let mut result = Ok(());
    let mut z = archive.map(ArchiveStore::compressor);
    loop {
        // Hold the receiver only to take a job, not while writing it.
        let next = rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok(job) = next else { break };
        let size = job.data.len();
        if result.is_ok() {
            result = match (archive, &mut z) {
                (Some(store), Some(z)) => store.write(z, &job),
                _ => write_trusted(repo, job),
            };
        }
        let mut st = shared.lock();
        st.queued -= size;
        st.failed |= result.is_err();
        shared.changed.notify_all();
    }
    result
}
