//! `ThreadGroup`: the runtime's worker threads, and waiting for them to
//! exit with a timeout.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Threads started by one runtime.
pub(crate) struct ThreadGroup {
    handles: Vec<JoinHandle<()>>,
    alive: Arc<(Mutex<usize>, Condvar)>,
}

impl ThreadGroup {
    pub(crate) fn new() -> ThreadGroup {
        ThreadGroup {
            handles: Vec::new(),
            alive: Arc::new((Mutex::new(0), Condvar::new())),
        }
    }

    /// Starts `f` on a new thread counted by the group.
    pub(crate) fn spawn(
        &mut self,
        builder: std::thread::Builder,
        f: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        struct Exit(Arc<(Mutex<usize>, Condvar)>);
        impl Drop for Exit {
            // Counts the thread out even if `f` panics.
            fn drop(&mut self) {
                let (lock, cvar) = &*self.0;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                cvar.notify_all();
            }
        }
        *self.alive.0.lock().unwrap() += 1;
        let exit = Exit(self.alive.clone());
        match builder.spawn(move || {
            let _exit = exit;
            f();
        }) {
            Ok(h) => {
                self.handles.push(h);
                Ok(())
            }
            Err(e) => {
                // The closure (and `exit` with it) was dropped: counted out.
                Err(e)
            }
        }
    }

    /// Waits until every thread exited, or `timeout` passed (`None`: no
    /// limit). Returns true if all exited; their handles are joined then.
    /// Threads still running are detached.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let (lock, cvar) = &*self.alive;
        let mut alive = lock.lock().unwrap();
        while *alive > 0 {
            match deadline {
                None => alive = cvar.wait(alive).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    alive = cvar.wait_timeout(alive, d - now).unwrap().0;
                }
            }
        }
        let all_exited = *alive == 0;
        drop(alive);
        let handles = std::mem::take(&mut self.handles);
        if all_exited {
            for h in handles {
                let _ = h.join();
            }
        }
        all_exited
    }

    /// True if the calling thread is one of the group's.
    pub(crate) fn contains_current(&self) -> bool {
        let me = std::thread::current().id();
        self.handles.iter().any(|h| h.thread().id() == me)
    }
}
