//! [`Registry`]: one breaker per downstream, by name, as an explicit value.

use std::collections::HashMap;
use std::fmt;

use keel_timex::{Clock, CoarseClock};
use parking_lot::RwLock;

use crate::{Breaker, Builder, ConfigError, Mode};

/// Named breakers built from one template, created on first use.
///
/// go-zero keeps such a map as process-wide state; here it is a value you own (put it in
/// your app state), so tests and tenants do not share breakers by accident.
///
/// ```
/// use keel_breaker::{Breaker, Registry};
///
/// let breakers = Registry::new(Breaker::builder().k(1.5))?;
/// let users = breakers.get("users-db");
/// assert_eq!(users.name(), "users-db");
/// assert_eq!(breakers.get("users-db").name(), "users-db"); // the same breaker
/// breakers.disable("cache"); // a no-op breaker for this name
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
pub struct Registry<C: Clock = CoarseClock> {
    template: Builder,
    clock: C,
    breakers: RwLock<HashMap<String, Breaker<C>>>,
}

impl Registry {
    /// A registry whose breakers use `template` (its name is replaced by each breaker's) on
    /// the process-wide coarse clock. The template is checked here, once.
    pub fn new(template: Builder) -> Result<Registry, ConfigError> {
        Registry::with_clock(template, CoarseClock::new())
    }
}

impl<C: Clock> Registry<C> {
    /// [`Registry::new`] on `clock`.
    pub fn with_clock(template: Builder, clock: C) -> Result<Registry<C>, ConfigError> {
        template.validate()?;
        Ok(Registry {
            template,
            clock,
            breakers: RwLock::new(HashMap::new()),
        })
    }

    /// The breaker named `name`, created from the template on first use. Clone it into the
    /// code that calls the downstream rather than looking it up per request.
    pub fn get(&self, name: &str) -> Breaker<C> {
        if let Some(b) = self.breakers.read().get(name) {
            return b.clone();
        }
        self.breakers
            .write()
            .entry(name.to_owned())
            .or_insert_with(|| self.build(name))
            .clone()
    }

    /// Makes `name` a no-op breaker (go-zero's `NoBreakerFor`): every call passes and
    /// nothing is recorded. Handles already given out switch too.
    pub fn disable(&self, name: &str) {
        self.get(name).set_mode(Mode::Disabled);
    }

    /// Forgets `name`; the next [`get`](Registry::get) builds a fresh breaker. Handles already
    /// given out keep working on the old one.
    pub fn remove(&self, name: &str) -> Option<Breaker<C>> {
        self.breakers.write().remove(name)
    }

    /// The names of the breakers created so far.
    pub fn names(&self) -> Vec<String> {
        self.breakers.read().keys().cloned().collect()
    }

    fn build(&self, name: &str) -> Breaker<C> {
        self.template
            .clone()
            .name(name)
            .build_with_clock(self.clock.clone())
            .expect("the template was validated when the registry was made")
    }
}

impl<C: Clock> fmt::Debug for Registry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("template", &self.template)
            .field("breakers", &self.names())
            .finish()
    }
}
