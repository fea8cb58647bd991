//! `LocalSet`: run `!Send` futures on the thread that drives the set.
//!
//! Tasks of a set are bound to its `Shared` scheduler. A wake (from any
//! thread) queues the task in the set's queue and wakes whoever polls the
//! set; the queue is only drained, and tasks only polled, by the set's own
//! `run_until` / `Future` impl, which the `!Send` `LocalSet` confines to its
//! thread.

use super::list::OwnedTasks;
use super::{Id, JoinHandle, Notified, Schedule, Task};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Tasks run per poll of the set before it yields back to the runtime.
const MAX_TASKS_PER_TICK: usize = 61;

/// A set of tasks that all run on the current thread, so they need not be
/// `Send`.
///
/// Drive it with [`LocalSet::run_until`] (or [`LocalSet::block_on`]), or
/// await the set itself to run until all its tasks completed. Dropping the
/// set cancels the tasks still in it (their futures are dropped on this
/// thread).
///
/// ```
/// use rt_core::task::{spawn_local, LocalSet};
/// use std::rc::Rc;
///
/// let rt = rt_core::runtime::Builder::new_current_thread().build().unwrap();
/// let local = LocalSet::new();
/// let n = local.block_on(&rt, async {
///     let shared = Rc::new(5); // not Send
///     let s = shared.clone();
///     spawn_local(async move { *s * 2 }).await.unwrap()
/// });
/// assert_eq!(n, 10);
/// ```
pub struct LocalSet {
    context: Rc<LocalContext>,
    // Not Send, not Sync: the tasks must stay on this thread.
    _not_send: PhantomData<*const ()>,
}

struct LocalContext {
    shared: Arc<Shared>,
}

/// The set's scheduler, shared with its tasks (and their wakers).
struct Shared {
    /// Woken tasks; `None` once the set is gone.
    queue: Mutex<Option<VecDeque<Notified<Arc<Shared>>>>>,
    /// Whoever polls the set.
    waker: Mutex<Option<Waker>>,
    owned: OwnedTasks<Arc<Shared>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<LocalContext>>> = const { RefCell::new(None) };
}

/// Spawns a `!Send` future on the `LocalSet` this code runs in.
///
/// # Panics
/// Outside a `LocalSet` (not inside `run_until`, `block_on` or a task of
/// one).
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let cx = CURRENT.try_with(|c| c.borrow().clone()).ok().flatten();
    match cx {
        Some(cx) => cx.spawn(future),
        None => panic!("`spawn_local` called from outside of a `task::LocalSet`"),
    }
}

impl LocalSet {
    /// An empty set.
    pub fn new() -> LocalSet {
        LocalSet {
            context: Rc::new(LocalContext {
                shared: Arc::new(Shared {
                    queue: Mutex::new(Some(VecDeque::new())),
                    waker: Mutex::new(None),
                    owned: OwnedTasks::new(1),
                }),
            }),
            _not_send: PhantomData,
        }
    }

    /// Spawns a `!Send` future on this set. It runs when the set is driven.
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.context.spawn(future)
    }

    /// Runs `future` on `rt`'s `block_on`, driving this set's tasks
    /// alongside it.
    #[track_caller]
    pub fn block_on<F: Future>(&self, rt: &crate::runtime::Runtime, future: F) -> F::Output {
        rt.block_on(self.run_until(future))
    }

    /// Runs `future`, driving this set's tasks while it is pending. Returns
    /// the future's output; tasks still in the set stay there.
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            self.context.shared.register_waker(cx.waker());
            // Poll the future inside the set so it can `spawn_local`.
            if let Poll::Ready(v) = self.with_context(|| future.as_mut().poll(cx)) {
                return Poll::Ready(v);
            }
            if self.tick() {
                // More work queued: come back after others had a turn.
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await
    }

    /// Runs up to a tick's worth of queued tasks. True if more are queued.
    fn tick(&self) -> bool {
        self.with_context(|| {
            for _ in 0..MAX_TASKS_PER_TICK {
                let next = self.context.shared.pop();
                match next {
                    Some(task) => crate::task::coop::budget(|| task.run()),
                    None => return false,
                }
            }
            self.context.shared.has_queued()
        })
    }

    fn with_context<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Reset(Option<Rc<LocalContext>>);
        impl Drop for Reset {
            fn drop(&mut self) {
                let prev = self.0.take();
                // Dropped outside the borrow: the last reference to a set's
                // context may drop tasks, whose destructors may look here.
                let replaced = CURRENT
                    .try_with(|c| std::mem::replace(&mut *c.borrow_mut(), prev))
                    .ok();
                drop(replaced);
            }
        }
        // During thread-local teardown (a set kept in a `thread_local!` is
        // dropped at thread exit) the context cannot be set: `f` runs
        // without it (a `spawn_local` from a destructor then panics, as
        // outside a set; cancelling the tasks needs no context).
        match CURRENT.try_with(|c| c.borrow_mut().replace(self.context.clone())) {
            Ok(prev) => {
                let _reset = Reset(prev);
                f()
            }
            Err(_) => f(),
        }
    }
}

impl Default for LocalSet {
    fn default() -> Self {
        Self::new()
    }
}

/// Awaiting a set runs it until every task in it completed.
impl Future for LocalSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.context.shared.register_waker(cx.waker());
        if self.tick() {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else if self.context.shared.owned.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for LocalSet {
    fn drop(&mut self) {
        self.with_context(|| {
            // Cancel every task here, on the owning thread.
            self.context.shared.owned.close_and_shutdown_all(0);
            // Then drop queued entries and refuse later wakes.
            let queued = self.context.shared.queue.lock().unwrap().take();
            drop(queued);
        });
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet")
            .field("tasks", &self.context.shared.owned.len())
            .finish()
    }
}

impl LocalContext {
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        // SAFETY: the task is bound to this set's scheduler, whose queue is
        // only drained, and whose tasks are only polled and shut down, by
        // the `!Send` LocalSet on the thread that created it (this one: a
        // LocalContext never leaves its thread).
        let (join, notified) = unsafe {
            self.shared
                .owned
                .bind_local(future, self.shared.clone(), Id::next())
        };
        if let Some(notified) = notified {
            self.shared.schedule(notified);
        }
        join
    }
}

impl Shared {
    fn register_waker(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn pop(&self) -> Option<Notified<Arc<Shared>>> {
        self.queue.lock().unwrap().as_mut()?.pop_front()
    }

    fn has_queued(&self) -> bool {
        self.queue
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|q| !q.is_empty())
    }
}

impl Schedule for Arc<Shared> {
    fn release(&self, task: &Task<Self>) -> Option<Task<Self>> {
        self.owned.remove(task)
    }

    fn schedule(&self, task: Notified<Self>) {
        {
            let mut queue = self.queue.lock().unwrap();
            match queue.as_mut() {
                Some(q) => q.push_back(task),
                None => {
                    // The set is gone: the task was already cancelled.
                    drop(queue);
                    drop(task);
                    return;
                }
            }
        }
        let waker = self.waker.lock().unwrap().clone();
        if let Some(w) = waker {
            w.wake();
        }
    }
}
