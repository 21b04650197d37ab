//! [`CpuChoice`]: the CPU source a shedder reads on every decision, without a virtual call
//! for the built-in sources.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::cpu::{CpuMode, CpuSource, ManualCpu, NoCpu, SystemCpu};

#[derive(Clone)]
pub(crate) enum CpuChoice {
    System(SystemCpu),
    Manual(ManualCpu),
    Absent,
    Custom(Arc<dyn CpuSource>),
}

impl CpuChoice {
    pub(crate) fn system() -> CpuChoice {
        CpuChoice::System(SystemCpu::new(CpuMode::Auto))
    }

    /// Recognises the built-in sources so `usage` can call them directly.
    pub(crate) fn of<S: CpuSource>(source: S) -> CpuChoice {
        let any: Box<dyn Any> = Box::new(source);
        let any = match any.downcast::<SystemCpu>() {
            Ok(s) => return CpuChoice::System(*s),
            Err(other) => other,
        };
        let any = match any.downcast::<ManualCpu>() {
            Ok(m) => return CpuChoice::Manual(*m),
            Err(other) => other,
        };
        match any.downcast::<NoCpu>() {
            Ok(_) => CpuChoice::Absent,
            Err(other) => {
                let source = *other
                    .downcast::<S>()
                    .unwrap_or_else(|_| unreachable!("the box holds an S"));
                CpuChoice::Custom(Arc::new(source))
            }
        }
    }

    #[inline]
    pub(crate) fn usage(&self) -> Option<u32> {
        match self {
            CpuChoice::System(s) => s.usage(),
            CpuChoice::Manual(m) => m.usage(),
            CpuChoice::Absent => None,
            CpuChoice::Custom(c) => c.usage(),
        }
    }
}

impl fmt::Debug for CpuChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuChoice::System(s) => f.debug_tuple("System").field(s).finish(),
            CpuChoice::Manual(m) => f.debug_tuple("Manual").field(m).finish(),
            CpuChoice::Absent => f.write_str("Absent"),
            CpuChoice::Custom(_) => f.write_str("Custom"),
        }
    }
}
