//! A table of host resource objects, addressed by the `rep` that guests see
//! behind their handles. Entries may have a parent, and a parent cannot be
//! deleted while it has children (a descriptor cannot go before the streams
//! opened from it), as in wasmtime's `ResourceTable`.

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

/// A typed reference to an entry of a [`ResourceTable`].
pub struct Resource<T> {
    rep: u32,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Resource<T> {
    /// The reference for `rep` (as received in a `ResourceAny` from a guest).
    pub fn new(rep: u32) -> Self {
        Resource {
            rep,
            _marker: PhantomData,
        }
    }
    pub fn rep(&self) -> u32 {
        self.rep
    }
}

impl<T> Clone for Resource<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Resource<T> {}

impl<T> fmt::Debug for Resource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resource<{}>({})", std::any::type_name::<T>(), self.rep)
    }
}

/// Why a table operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// No live entry at that rep.
    NotPresent,
    /// The entry holds a value of another type.
    WrongType,
    /// The entry still has children and cannot be deleted.
    HasChildren,
    /// The table cannot grow further.
    Full,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TableError::NotPresent => "resource not present",
            TableError::WrongType => "resource has a different type",
            TableError::HasChildren => "resource still has children",
            TableError::Full => "resource table is full (too many live host resources)",
        })
    }
}

impl std::error::Error for TableError {}

struct Entry {
    value: Box<dyn Any + Send>,
    parent: Option<u32>,
    children: BTreeSet<u32>,
}

/// Host objects behind resource handles.
pub struct ResourceTable {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Live entries allowed: a guest creating pollables or streams in a loop
    /// gets [`TableError::Full`] instead of exhausting the host.
    max: usize,
}

impl Default for ResourceTable {
    fn default() -> Self {
        Self::with_max(Self::DEFAULT_MAX)
    }
}

impl ResourceTable {
    /// Live entries a table holds by default.
    pub const DEFAULT_MAX: usize = 100_000;

    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table holding at most `max` live entries.
    pub fn with_max(max: usize) -> Self {
        ResourceTable {
            entries: Vec::new(),
            free: Vec::new(),
            max,
        }
    }

    /// Changes the number of live entries allowed from now on.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Adds a value with no parent.
    pub fn push<T: Send + 'static>(&mut self, value: T) -> Result<Resource<T>, TableError> {
        self.insert(Box::new(value), None).map(Resource::new)
    }

    /// Adds a value that must be deleted before `parent` can be.
    pub fn push_child<T: Send + 'static, U>(
        &mut self,
        value: T,
        parent: &Resource<U>,
    ) -> Result<Resource<T>, TableError> {
        self.entry(parent.rep)?;
        let rep = self.insert(Box::new(value), Some(parent.rep))?;
        self.entries[parent.rep as usize]
            .as_mut()
            .expect("checked above")
            .children
            .insert(rep);
        Ok(Resource::new(rep))
    }

    fn insert(&mut self, value: Box<dyn Any + Send>, parent: Option<u32>) -> Result<u32, TableError> {
        let entry = Entry {
            value,
            parent,
            children: BTreeSet::new(),
        };
        if let Some(rep) = self.free.pop() {
            self.entries[rep as usize] = Some(entry);
            return Ok(rep);
        }
        if self.entries.len() >= self.max {
            return Err(TableError::Full);
        }
        let rep = u32::try_from(self.entries.len()).map_err(|_| TableError::Full)?;
        self.entries.push(Some(entry));
        Ok(rep)
    }

    fn entry(&self, rep: u32) -> Result<&Entry, TableError> {
        self.entries
            .get(rep as usize)
            .and_then(Option::as_ref)
            .ok_or(TableError::NotPresent)
    }

    pub fn get<T: 'static>(&self, r: &Resource<T>) -> Result<&T, TableError> {
        self.entry(r.rep)?.value.downcast_ref().ok_or(TableError::WrongType)
    }

    pub fn get_mut<T: 'static>(&mut self, r: &Resource<T>) -> Result<&mut T, TableError> {
        self.entries
            .get_mut(r.rep as usize)
            .and_then(Option::as_mut)
            .ok_or(TableError::NotPresent)?
            .value
            .downcast_mut()
            .ok_or(TableError::WrongType)
    }

    /// Removes an entry and returns its value. Fails, changing nothing, if the
    /// entry has children.
    pub fn delete<T: 'static>(&mut self, r: Resource<T>) -> Result<T, TableError> {
        let entry = self.entry(r.rep)?;
        if !entry.children.is_empty() {
            return Err(TableError::HasChildren);
        }
        if !entry.value.is::<T>() {
            return Err(TableError::WrongType);
        }
        let entry = self.entries[r.rep as usize].take().expect("checked above");
        if let Some(parent) = entry.parent {
            if let Some(Some(p)) = self.entries.get_mut(parent as usize) {
                p.children.remove(&r.rep);
            }
        }
        self.free.push(r.rep);
        Ok(*entry.value.downcast().expect("type checked above"))
    }

    /// Reps of the children of an entry.
    pub fn children<T>(&self, r: &Resource<T>) -> Result<Vec<u32>, TableError> {
        Ok(self.entry(r.rep)?.children.iter().copied().collect())
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_outlive_their_children() {
        let mut t = ResourceTable::new();
        let dir = t.push("dir".to_string()).unwrap();
        let file = t.push_child(7u32, &dir).unwrap();
        assert_eq!(t.children(&dir).unwrap(), vec![file.rep()]);
        assert_eq!(t.delete(dir).unwrap_err(), TableError::HasChildren);
        assert_eq!(t.get(&dir).unwrap(), "dir", "a refused delete changes nothing");
        assert_eq!(t.delete(file).unwrap(), 7);
        assert_eq!(t.delete(dir).unwrap(), "dir");
        assert!(t.is_empty());
    }

    #[test]
    fn types_and_presence_are_checked() {
        let mut t = ResourceTable::new();
        let a = t.push(1u8).unwrap();
        assert_eq!(
            t.get(&Resource::<String>::new(a.rep())).unwrap_err(),
            TableError::WrongType
        );
        assert_eq!(
            t.delete(Resource::<String>::new(a.rep())).unwrap_err(),
            TableError::WrongType
        );
        *t.get_mut(&a).unwrap() = 2;
        assert_eq!(t.delete(a).unwrap(), 2);
        assert_eq!(t.get(&a).unwrap_err(), TableError::NotPresent);
        assert_eq!(t.push_child(0u8, &a).unwrap_err(), TableError::NotPresent);
        // Freed reps are reused.
        assert_eq!(t.push(3u8).unwrap().rep(), a.rep());
    }
}
