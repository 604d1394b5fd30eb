//! The model worker: one dedicated OS thread that owns every session.
//!
//! Inference blocks for seconds and ONNX Runtime's `run` is not thread-safe, so the engine never
//! runs a graph on an async thread: it sends a closure to this thread over a bounded channel and
//! waits for the reply. The closure gets `&mut Sessions` and does whatever the pipeline needs
//! (text encoder, denoising loop, VAE) in one go, so tensors never cross threads.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Graph, GraphInfo, Runtime, SessionSpec};
use crate::ModelError;

/// The loaded graphs, by name, as seen from the worker thread.
pub struct Sessions {
    runtime: Runtime,
    graphs: BTreeMap<String, Graph>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("graphs", &self.graphs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(runtime: Runtime) -> Sessions {
        Sessions {
            runtime,
            graphs: BTreeMap::new(),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Loads a graph, replacing any graph of the same name.
    pub fn load(&mut self, spec: &SessionSpec) -> Result<&GraphInfo, ModelError> {
        let graph = self.runtime.load(spec)?;
        let slot = self.graphs.entry(spec.name.clone()).insert_entry(graph);
        Ok(slot.into_mut().info())
    }

    /// Drops a graph, freeing its memory. False when there was none of that name.
    pub fn unload(&mut self, name: &str) -> bool {
        self.graphs.remove(name).is_some()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.graphs.keys().map(String::as_str)
    }

    pub fn info(&self, name: &str) -> Option<&GraphInfo> {
        self.graphs.get(name).map(Graph::info)
    }

    /// The graph called `name`, or an error listing the loaded ones.
    pub fn graph(&mut self, name: &str) -> Result<&mut Graph, ModelError> {
        if !self.graphs.contains_key(name) {
            let loaded: Vec<&str> = self.names().collect();
            return Err(ModelError::Runtime(format!(
                "no graph named {name} is loaded (loaded: {})",
                if loaded.is_empty() {
                    "none".to_string()
                } else {
                    loaded.join(", ")
                }
            )));
        }
        self.graphs
            .get_mut(name)
            .ok_or_else(|| ModelError::Runtime(format!("no graph named {name} is loaded")))
    }
}

type Job = Box<dyn FnOnce(&mut Sessions) + Send>;

enum Message {
    Job(Job),
    Stop,
}

/// Owns the worker thread: dropping it (or [`ModelWorker::shutdown`]) stops the thread after
/// the jobs already queued and waits for it. Handles outliving it get
/// [`ModelError::WorkerStopped`].
pub struct ModelWorker {
    handle: WorkerHandle,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for ModelWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelWorker")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

/// Sends jobs to the worker. Cheap to clone and `Send`; any number may exist.
#[derive(Clone)]
pub struct WorkerHandle {
    sender: SyncSender<Message>,
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle").finish_non_exhaustive()
    }
}

impl ModelWorker {
    /// Starts the thread and loads `specs` on it. Returns once every graph has loaded, or with
    /// the first load error (the thread is then gone). `queue` is how many jobs may wait before
    /// [`WorkerHandle::submit`] blocks (at least 1).
    pub fn spawn(
        runtime: Runtime,
        specs: Vec<SessionSpec>,
        queue: usize,
    ) -> Result<ModelWorker, ModelError> {
        let (sender, receiver) = mpsc::sync_channel::<Message>(queue.max(1));
        let (ready_sender, ready_receiver) = mpsc::sync_channel::<Result<(), ModelError>>(1);
        let thread = std::thread::Builder::new()
            .name("loopsmith-models".to_string())
            .spawn(move || {
                let mut sessions = Sessions::new(runtime);
                let loaded = specs
                    .iter()
                    .try_for_each(|spec| sessions.load(spec).map(drop));
                let ok = loaded.is_ok();
                if ready_sender.send(loaded).is_err() || !ok {
                    return;
                }
                serve(&mut sessions, &receiver);
            })
            .map_err(|e| {
                ModelError::Runtime(format!("cannot start the model worker thread: {e}"))
            })?;
        match ready_receiver.recv() {
            Ok(Ok(())) => Ok(ModelWorker {
                handle: WorkerHandle { sender },
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let why = thread.join().err().map_or_else(
                    || "it stopped".to_string(),
                    |panic| format!("it panicked: {}", panic_message(panic.as_ref())),
                );
                Err(ModelError::Runtime(format!(
                    "the model worker failed while loading graphs: {why}"
                )))
            }
        }
    }

    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// [`WorkerHandle::call`] on this worker.
    pub fn call<R, F>(&self, job: F) -> Result<R, ModelError>
    where
        F: FnOnce(&mut Sessions) -> Result<R, ModelError> + Send + 'static,
        R: Send + 'static,
    {
        self.handle.call(job)
    }

    /// Stops the thread after the queued jobs and waits for it.
    pub fn shutdown(mut self) -> Result<(), ModelError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ModelError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // Fails only when the thread is already gone; joining tells how it went.
        let _ = self.handle.sender.send(Message::Stop);
        thread.join().map_err(|panic| {
            ModelError::Runtime(format!(
                "the model worker panicked: {}",
                panic_message(panic.as_ref())
            ))
        })
    }
}

impl Drop for ModelWorker {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "model worker shutdown");
        }
    }
}

fn serve(sessions: &mut Sessions, receiver: &Receiver<Message>) {
    for message in receiver {
        match message {
            Message::Job(job) => job(sessions),
            Message::Stop => break,
        }
    }
}

impl WorkerHandle {
    /// Queues `job` for the worker thread (blocking while the queue is full) and returns a
    /// [`Ticket`] for its result.
    pub fn submit<R, F>(&self, job: F) -> Result<Ticket<R>, ModelError>
    where
        F: FnOnce(&mut Sessions) -> Result<R, ModelError> + Send + 'static,
        R: Send + 'static,
    {
        let (job, ticket) = package(job);
        self.sender
            .send(Message::Job(job))
            .map_err(|_| ModelError::WorkerStopped)?;
        Ok(ticket)
    }

    /// Like [`WorkerHandle::submit`], but [`ModelError::WorkerBusy`] instead of waiting when the
    /// queue is full: an async caller can turn a job away without blocking its thread.
    pub fn try_submit<R, F>(&self, job: F) -> Result<Ticket<R>, ModelError>
    where
        F: FnOnce(&mut Sessions) -> Result<R, ModelError> + Send + 'static,
        R: Send + 'static,
    {
        let (job, ticket) = package(job);
        match self.sender.try_send(Message::Job(job)) {
            Ok(()) => Ok(ticket),
            Err(TrySendError::Full(_)) => Err(ModelError::WorkerBusy),
            Err(TrySendError::Disconnected(_)) => Err(ModelError::WorkerStopped),
        }
    }

    /// Runs `job` on the worker thread and blocks until it returns. A panic in the job comes
    /// back as an error; the worker carries on.
    pub fn call<R, F>(&self, job: F) -> Result<R, ModelError>
    where
        F: FnOnce(&mut Sessions) -> Result<R, ModelError> + Send + 'static,
        R: Send + 'static,
    {
        self.submit(job)?.wait()
    }
}

/// Wraps a job so it replies on its own channel and a panic becomes an error.
fn package<R, F>(job: F) -> (Job, Ticket<R>)
where
    F: FnOnce(&mut Sessions) -> Result<R, ModelError> + Send + 'static,
    R: Send + 'static,
{
    let (reply, receiver) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |sessions: &mut Sessions| {
        let result = catch_unwind(AssertUnwindSafe(|| job(sessions))).unwrap_or_else(|panic| {
            Err(ModelError::Runtime(format!(
                "a model worker job panicked: {}",
                panic_message(panic.as_ref())
            )))
        });
        // The caller may have stopped waiting; the result is then unwanted.
        let _ = reply.send(result);
    });
    (job, Ticket { receiver })
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// The pending result of a submitted job.
pub struct Ticket<R> {
    receiver: Receiver<Result<R, ModelError>>,
}

impl<R> fmt::Debug for Ticket<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket").finish_non_exhaustive()
    }
}

impl<R> Ticket<R> {
    /// Blocks until the job has run. [`ModelError::WorkerStopped`] when the worker stopped
    /// before running it.
    pub fn wait(self) -> Result<R, ModelError> {
        self.receiver
            .recv()
            .map_err(|_| ModelError::WorkerStopped)?
    }

    /// Waits at most `timeout`; `None` when the job has not finished by then (the ticket stays
    /// usable).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<R, ModelError>> {
        match self.receiver.recv_timeout(timeout) {
            Ok(result) => Some(result),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(ModelError::WorkerStopped)),
        }
    }
}
