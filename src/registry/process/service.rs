//! `process.service` entries: a process kept running. A service whose
//! process traps or fails is restarted after a back-off (Wippy's
//! `lifecycle.restart`: `initial_delay` 1s, doubling by `backoff_factor`
//! up to `max_delay` 90s, ± `jitter` 10%), until `max_attempts` restarts
//! (0: no limit); running past `stable_threshold` (5s) resets the count.
//! Every restart is logged on stderr. A process that returns normally has
//! finished its work and is not restarted.

use super::{Exit, Process};
use crate::dispatch::Signal;
use crate::registry::config::{Kind, ServiceSpec};
use crate::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a service is.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceState {
    Running {
        restarts: u32,
    },
    /// Its process returned normally.
    Finished(Exit),
    /// It failed more times than `max_attempts` allows.
    GaveUp {
        restarts: u32,
        last: Exit,
    },
    /// Stopped by [`Supervisor::stop`].
    Stopped,
}

struct Service {
    id: String,
    state: Mutex<ServiceState>,
    current: Mutex<Option<Process>>,
    ended: Signal,
}

/// The services started by [`Registry::start_services`].
pub struct Supervisor {
    services: Vec<Arc<Service>>,
    stop: Arc<Signal>,
}

/// Restart settings, with Wippy's defaults filled in.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    max_attempts: u32,
    stable: Duration,
    stop_timeout: Duration,
}

impl Backoff {
    fn of(spec: &ServiceSpec) -> Self {
        let r = &spec.lifecycle.restart;
        let nonzero = |d: Option<crate::registry::config::DurationSpec>, default: Duration| {
            d.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(default)
        };
        Backoff {
            initial: nonzero(r.initial_delay, Duration::from_secs(1)),
            max: nonzero(r.max_delay, Duration::from_secs(90)),
            factor: r.backoff_factor.filter(|f| *f > 0.0).unwrap_or(2.0),
            jitter: r.jitter.filter(|j| *j > 0.0).unwrap_or(0.1),
            max_attempts: r.max_attempts.unwrap_or(0),
            stable: nonzero(spec.lifecycle.stable_threshold, Duration::from_secs(5)),
            stop_timeout: nonzero(spec.lifecycle.stop_timeout, Duration::from_secs(10)),
        }
    }

    /// The wait before restart number `n` (1-based).
    fn delay(&self, n: u32) -> Duration {
        let base = self.initial.as_secs_f64() * self.factor.powi(n.saturating_sub(1).min(64) as i32);
        let base = base.min(self.max.as_secs_f64());
        let spread = base * self.jitter * (2.0 * random_unit() - 1.0);
        Duration::from_secs_f64((base + spread).max(0.0))
    }
}

/// A number in [0, 1) for jitter.
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

impl Registry {
    /// Starts every `process.service` with `lifecycle.auto_start`.
    pub fn start_services(&self) -> Supervisor {
        let ids: Vec<String> = self
            .inner
            .entries
            .values()
            .filter(|e| matches!(&e.kind, Kind::Service(s) if s.lifecycle.auto_start))
            .filter(|e| !self.inner.broken.contains_key(&e.id))
            .map(|e| e.id.clone())
            .collect();
        self.start(&ids)
    }

    /// Starts the services `ids` (each a `process.service` entry).
    pub fn start(&self, ids: &[String]) -> Supervisor {
        let stop: Arc<Signal> = Arc::default();
        let mut services = Vec::new();
        for id in ids {
            let Some(Kind::Service(spec)) = self.inner.entries.get(id).map(|e| &e.kind) else {
                continue;
            };
            let service = Arc::new(Service {
                id: id.clone(),
                state: Mutex::new(ServiceState::Running { restarts: 0 }),
                current: Mutex::new(None),
                ended: Signal::default(),
            });
            let task = supervise(self.clone(), (**spec).clone(), service.clone(), stop.clone());
            match self.inner.process_host() {
                Ok(host) => host.spawn(task).detach(),
                Err(e) => {
                    eprintln!("service `{id}`: cannot start: {e}");
                    continue;
                }
            }
            services.push(service);
        }
        Supervisor { services, stop }
    }
}

/// Keeps one service's process running, Wippy's way.
async fn supervise(registry: Registry, spec: ServiceSpec, service: Arc<Service>, stop: Arc<Signal>) {
    let id = service.id.clone();
    let process_id = registry
        .inner
        .entries
        .get(&id)
        .map(|e| crate::registry::config::qualify(&e.namespace, &spec.process))
        .unwrap_or_default();
    let backoff = Backoff::of(&spec);
    let mut restarts = 0u32;
    let end = |state: ServiceState| {
        *service.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        service.ended.set();
    };
    loop {
        if stop.is_set() {
            return end(ServiceState::Stopped);
        }
        let started = Instant::now();
        let exit = match registry.spawn(&process_id, &spec.args) {
            Ok(p) => {
                *service.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
                let stopped = async {
                    stop.wait().await;
                    None
                };
                match futures_lite::future::or(async { Some(p.wait().await) }, stopped).await {
                    Some(exit) => exit,
                    None => {
                        p.cancel();
                        let grace = async {
                            async_io::Timer::after(backoff.stop_timeout).await;
                        };
                        futures_lite::future::or(async { drop(p.wait().await) }, grace).await;
                        return end(ServiceState::Stopped);
                    }
                }
            }
            Err(e) => Exit::Failed(format!("{e:#}")),
        };
        if exit.is_success() {
            eprintln!("service `{id}`: `{process_id}` {exit}; not restarted");
            return end(ServiceState::Finished(exit));
        }
        if started.elapsed() >= backoff.stable {
            restarts = 0;
        }
        if backoff.max_attempts > 0 && restarts >= backoff.max_attempts {
            eprintln!("service `{id}`: `{process_id}` {exit}; giving up after {restarts} restart(s)");
            return end(ServiceState::GaveUp { restarts, last: exit });
        }
        restarts += 1;
        let delay = backoff.delay(restarts);
        let of = match backoff.max_attempts {
            0 => String::new(),
            n => format!("/{n}"),
        };
        eprintln!(
            "service `{id}`: `{process_id}` {exit}; restart {restarts}{of} in {:.1}s",
            delay.as_secs_f64()
        );
        *service.state.lock().unwrap_or_else(|e| e.into_inner()) = ServiceState::Running { restarts };
        let slept = async {
            async_io::Timer::after(delay).await;
            true
        };
        let stopped = async {
            stop.wait().await;
            false
        };
        if !futures_lite::future::or(slept, stopped).await {
            return end(ServiceState::Stopped);
        }
    }
}

impl Supervisor {
    /// The services and where each is.
    pub fn states(&self) -> Vec<(String, ServiceState)> {
        self.services
            .iter()
            .map(|s| (s.id.clone(), s.state.lock().unwrap_or_else(|e| e.into_inner()).clone()))
            .collect()
    }

    /// How many services were started.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Waits until every service has ended (finished, given up or stopped).
    pub async fn wait(&self) {
        for s in &self.services {
            s.ended.wait().await;
        }
    }

    /// Stops every service: their processes are cancelled, each given its
    /// `stop_timeout` to end.
    pub async fn stop(&self) {
        self.stop.set();
        self.wait().await;
    }

    /// Whether a service gave up.
    pub fn any_gave_up(&self) -> bool {
        self.states()
            .iter()
            .any(|(_, s)| matches!(s, ServiceState::GaveUp { .. }))
    }
}
