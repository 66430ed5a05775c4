//! Resource limits of a store: linear memory across all instances, table
//! elements, and counts. wasmi commits linear memory eagerly, so without a
//! cap a guest declaring `(memory 65536)` would make the host allocate and
//! zero 4 GiB.

/// Limits on what guests in one store may allocate.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bytes of linear memory, summed over every memory in the store.
    pub memory_bytes: usize,
    /// Elements of any one table.
    pub table_elements: usize,
    /// Core instances, memories and tables.
    pub instances: usize,
    pub memories: usize,
    pub tables: usize,
    /// Component instances (a nested component instantiated many times
    /// makes many, each with its own handle tables).
    pub component_instances: usize,
    /// Live handles in any one component instance's table (a guest calling
    /// `resource.new` in a loop stops here, not at the spec's 2^28 - 1).
    pub handles: usize,
    /// Host memory the values lifted for one call (its arguments, or its
    /// results) may take: a guest cannot make the host copy without bound.
    pub lifted_bytes: usize,
}

impl Default for Limits {
    /// 1 GiB of memory, a million table elements, 10 000 of each item,
    /// 100 000 handles per component instance, 256 MiB of lifted values per call.
    fn default() -> Self {
        Limits {
            memory_bytes: 1 << 30,
            table_elements: 1 << 20,
            instances: 10_000,
            memories: 10_000,
            tables: 10_000,
            component_instances: 10_000,
            handles: 100_000,
            lifted_bytes: 256 << 20,
        }
    }
}

/// The wasmi limiter enforcing [`Limits`], counting memory in use.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    pub limits: Limits,
    memory_in_use: usize,
    /// The growth last allowed: wasmi asks before it charges fuel, so a
    /// grow that then runs out of fuel (and is retried after the slice) or
    /// fails to allocate must give it back.
    last_grow: usize,
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        Limiter {
            limits,
            memory_in_use: 0,
            last_grow: 0,
        }
    }
}

impl Limiter {
    /// Bytes of linear memory in the store now.
    pub fn memory_in_use(&self) -> usize {
        self.memory_in_use
    }

    /// Counts `bytes` more of linear memory if they are allowed: a memory
    /// of ours growing again within what wasmi already gave it, after a
    /// reset gave those bytes back ([`Limiter::give_back`]).
    pub fn take(&mut self, bytes: u64) -> bool {
        let allowed = self.allows_memory(bytes);
        if allowed {
            self.memory_in_use += bytes as usize;
        }
        allowed
    }

    /// Stops counting `bytes` of linear memory: a reset made a memory of
    /// ours that much shorter to its guest, so the store holds as much as
    /// a fresh one would.
    pub fn give_back(&mut self, bytes: u64) {
        self.memory_in_use = self
            .memory_in_use
            .saturating_sub(usize::try_from(bytes).unwrap_or(usize::MAX));
    }

    /// Whether `bytes` more of linear memory would be allowed (asked
    /// without counting them).
    pub fn allows_memory(&self, bytes: u64) -> bool {
        usize::try_from(bytes).is_ok_and(|b| self.memory_in_use.saturating_add(b) <= self.limits.memory_bytes)
    }
}

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let grow = desired.saturating_sub(current);
        let allowed =
            maximum.is_none_or(|m| desired <= m) && self.memory_in_use.saturating_add(grow) <= self.limits.memory_bytes;
        if allowed {
            self.memory_in_use += grow;
            self.last_grow = grow;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: &wasmi_core::MemoryError) -> Result<(), wasmi_core::LimiterError> {
        self.memory_in_use = self.memory_in_use.saturating_sub(std::mem::take(&mut self.last_grow));
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        Ok(maximum.is_none_or(|m| desired <= m) && desired <= self.limits.table_elements)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }
    fn tables(&self) -> usize {
        self.limits.tables
    }
    fn memories(&self) -> usize {
        self.limits.memories
    }
}
