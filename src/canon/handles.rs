//! Per-component-instance state: the handle table (CanonicalABI.md "Table
//! State", "Resource State") and the `may_enter` / `may_leave` flags.

use super::trap::{trap, Trap};
use crate::values::ResourceType;

/// One resource handle in a component instance's table.
#[derive(Clone, Debug)]
pub struct Handle {
    pub rt: ResourceType,
    pub rep: u32,
    pub own: bool,
    /// For borrows: the index of the task (call) the borrow was lent to.
    pub borrow_scope: Option<usize>,
    /// Number of calls this handle is currently lent to as a borrow.
    pub num_lends: u32,
}

/// A handle table: slot 0 is reserved, freed slots are reused LIFO.
#[derive(Debug)]
pub struct HandleTable {
    array: Vec<Option<Handle>>,
    free: Vec<u32>,
    /// Live handles allowed ([`super::limits::Limits::handles`]), at most
    /// the spec's `MAX_LENGTH`.
    max: usize,
}

/// The spec's `Table.MAX_LENGTH`.
const MAX_LENGTH: usize = (1 << 28) - 1;

impl Default for HandleTable {
    fn default() -> Self {
        HandleTable::with_max(MAX_LENGTH)
    }
}

impl HandleTable {
    /// An empty table holding at most `max` live handles.
    pub fn with_max(max: usize) -> Self {
        HandleTable {
            array: vec![None],
            free: Vec::new(),
            max: max.min(MAX_LENGTH),
        }
    }

    /// Forgets every handle: the table is as new (a reset store's; the
    /// resources behind them go with the state being reset).
    pub fn clear(&mut self) {
        self.array.truncate(1);
        self.free.clear();
    }

    pub fn get(&self, i: u32) -> Result<&Handle, Trap> {
        match self.array.get(i as usize) {
            Some(Some(h)) => Ok(h),
            _ => Err(trap!("unknown handle index {i}")),
        }
    }

    pub fn get_mut(&mut self, i: u32) -> Result<&mut Handle, Trap> {
        match self.array.get_mut(i as usize) {
            Some(Some(h)) => Ok(h),
            _ => Err(trap!("unknown handle index {i}")),
        }
    }

    pub fn add(&mut self, h: Handle) -> Result<u32, Trap> {
        if let Some(i) = self.free.pop() {
            self.array[i as usize] = Some(h);
            return Ok(i);
        }
        let i = self.array.len();
        if i > self.max {
            return Err(trap!(
                "handle table full: a component instance may hold {} handles (`Limits::handles`)",
                self.max
            ));
        }
        self.array.push(Some(h));
        Ok(i as u32)
    }

    pub fn remove(&mut self, i: u32) -> Result<Handle, Trap> {
        self.get(i)?;
        let h = self.array[i as usize].take().expect("checked above");
        self.free.push(i);
        Ok(h)
    }

    /// Number of live handles.
    pub fn len(&self) -> usize {
        self.array.iter().filter(|h| h.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The runtime state of one component instance.
#[derive(Debug)]
pub struct InstanceState {
    pub parent: Option<usize>,
    pub handles: HandleTable,
    pub may_enter: bool,
    pub may_leave: bool,
}

impl InstanceState {
    /// A component instance's state; its table holds at most `max_handles`.
    pub fn new(parent: Option<usize>, max_handles: usize) -> Self {
        InstanceState {
            parent,
            handles: HandleTable::with_max(max_handles),
            may_enter: true,
            may_leave: true,
        }
    }
}

/// A synchronous call in progress (the spec's `Task`), tracking borrows lent
/// to it.
#[derive(Debug, Default)]
pub struct Task {
    pub num_borrows: u32,
}

/// Checks that a handle has the expected resource type.
pub fn check_type(i: u32, h: &Handle, rt: &ResourceType) -> Result<(), Trap> {
    if &h.rt != rt {
        let found = if h.rt.describe() == rt.describe() {
            format!("a different {}", h.rt.describe())
        } else {
            h.rt.describe().to_string()
        };
        return Err(trap!(
            "handle index {i} used with the wrong type, expected {} but found {found}",
            rt.describe()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle() -> Handle {
        Handle {
            rt: ResourceType::host("r", None),
            rep: 7,
            own: true,
            borrow_scope: None,
            num_lends: 0,
        }
    }

    #[test]
    fn slot_zero_is_reserved_and_free_slots_are_reused_lifo() {
        let mut t = HandleTable::default();
        assert!(t.get(0).is_err());
        let (a, b, c) = (
            t.add(handle()).unwrap(),
            t.add(handle()).unwrap(),
            t.add(handle()).unwrap(),
        );
        assert_eq!((a, b, c), (1, 2, 3));
        t.remove(1).unwrap();
        t.remove(3).unwrap();
        assert_eq!(t.add(handle()).unwrap(), 3);
        assert_eq!(t.add(handle()).unwrap(), 1);
        assert_eq!(t.add(handle()).unwrap(), 4);
        assert_eq!(t.remove(9).unwrap_err().0, "unknown handle index 9");
    }
}
