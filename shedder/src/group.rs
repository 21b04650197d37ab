//! [`ShedderGroup`]: one shedder per key (route, method, tenant), created on first use.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use keel_timex::{Clock, CoarseClock};
use parking_lot::RwLock;

use crate::{Builder, ConfigError, Shedder};

/// Shedders keyed by route, each built from one template on first use (go-zero's
/// `ShedderGroup`). Each key's shedder has its own window and in-flight count; all of them
/// share the template's CPU source (one sampler per process).
///
/// Look a route's shedder up once (at router construction) and keep the [`Shedder`]: a
/// lookup takes a read lock.
///
/// ```
/// use keel_shedder::{Shedder, ShedderGroup, cpu::ManualCpu};
///
/// let group = ShedderGroup::new(Shedder::builder().cpu_source(ManualCpu::new(0)))?;
/// let orders = group.get("/orders");
/// assert_eq!(orders.name(), "/orders");
/// assert_eq!(group.len(), 1);
/// let again = group.get("/orders"); // the same shedder
/// drop(orders.allow());
/// assert_eq!(again.snapshot().admitted, 1);
/// # Ok::<(), keel_shedder::ConfigError>(())
/// ```
pub struct ShedderGroup<C: Clock = CoarseClock> {
    template: Builder,
    clock: C,
    shedders: RwLock<HashMap<Arc<str>, Shedder<C>>>,
}

impl ShedderGroup {
    /// A group whose shedders are built from `template` (its name is replaced by each
    /// key) on the process-wide [`CoarseClock`].
    pub fn new(template: Builder) -> Result<ShedderGroup, ConfigError> {
        ShedderGroup::with_clock(template, CoarseClock::new())
    }
}

impl<C: Clock> ShedderGroup<C> {
    /// A group on `clock`. The template is validated here, so [`get`](ShedderGroup::get)
    /// cannot fail.
    pub fn with_clock(template: Builder, clock: C) -> Result<ShedderGroup<C>, ConfigError> {
        template.validate()?;
        // Resolve the CPU source once, so every key shares it.
        let cpu = template.cpu_or_default();
        let template = Builder {
            cpu: Some(cpu),
            ..template
        };
        Ok(ShedderGroup {
            template,
            clock,
            shedders: RwLock::new(HashMap::new()),
        })
    }

    /// The shedder for `key`, created on first use.
    pub fn get(&self, key: &str) -> Shedder<C> {
        if let Some(s) = self.shedders.read().get(key) {
            return s.clone();
        }
        let mut map = self.shedders.write();
        map.entry(Arc::from(key))
            .or_insert_with(|| {
                self.template
                    .clone()
                    .name(key)
                    .build_with_clock(self.clock.clone())
                    .unwrap_or_else(|e| unreachable!("the template was validated: {e}"))
            })
            .clone()
    }

    /// How many keys have a shedder.
    pub fn len(&self) -> usize {
        self.shedders.read().len()
    }

    /// Whether no key has a shedder yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys and their shedders, for statistics.
    pub fn shedders(&self) -> Vec<(Arc<str>, Shedder<C>)> {
        self.shedders
            .read()
            .iter()
            .map(|(k, s)| (Arc::clone(k), s.clone()))
            .collect()
    }
}

impl<C: Clock> fmt::Debug for ShedderGroup<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedderGroup")
            .field("template", &self.template)
            .field("keys", &self.len())
            .finish()
    }
}
