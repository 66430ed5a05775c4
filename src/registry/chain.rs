//! The `funcs` call chain a call runs in: the functions whose instances
//! (or Lua states) its callers hold while they wait for it. Its length is
//! the call depth; a call to a function already in it must not wait for
//! that function's pool, which its own callers may be exhausting.

use std::sync::Arc;

/// The callers of a call, outermost first. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    holders: Arc<Vec<Arc<str>>>,
}

impl Chain {
    /// How many `funcs` calls deep a call in this chain is.
    pub fn depth(&self) -> u32 {
        self.holders.len() as u32
    }

    /// The chain of the calls `id` makes, holding its instance meanwhile.
    pub fn through(&self, id: &str) -> Chain {
        let mut holders = Vec::with_capacity(self.holders.len() + 1);
        holders.extend(self.holders.iter().cloned());
        holders.push(id.into());
        Chain {
            holders: Arc::new(holders),
        }
    }

    /// Whether a caller in the chain holds an instance of `id`.
    pub fn holds(&self, id: &str) -> bool {
        self.holders.iter().any(|h| &**h == id)
    }
}
