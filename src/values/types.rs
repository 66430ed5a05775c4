//! Runtime component value types, resolved from the validator's type arena.
//!
//! A [`Type`] is self-contained: resource types inside it are the runtime
//! [`ResourceType`]s bound when the owning component instance was created, so a
//! function value carries everything needed to lift or lower its arguments
//! wherever it flows.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A component-model value type.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Arc<Type>),
    /// Fixed-length `list<T, N>`.
    FixedList(Arc<Type>, u32),
    /// `map<K, V>`, laid out as `list<tuple<K, V>>`.
    Map(Arc<Type>, Arc<Type>),
    Record(Arc<[Field]>),
    Tuple(Arc<[Type]>),
    Variant(Arc<[Case]>),
    Enum(Arc<[String]>),
    Option(Arc<Type>),
    Result {
        ok: Option<Arc<Type>>,
        err: Option<Arc<Type>>,
    },
    Flags(Arc<[String]>),
    Own(ResourceType),
    Borrow(ResourceType),
}

/// A named record field.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: Type,
}

/// A variant case with an optional payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub name: String,
    pub ty: Option<Type>,
}

/// A component function type: named parameters and at most one result.
///
/// Built with `FuncType::new` (in [`crate::canon::layout`], which counts the
/// flat core values once, as the call paths need them on every call).
#[derive(Clone, Debug, PartialEq)]
pub struct FuncType {
    pub params: Arc<[(String, Type)]>,
    pub result: Option<Type>,
    /// Number of flat core values of the parameters and of the result.
    pub(crate) flat_params: usize,
    pub(crate) flat_results: usize,
}

impl FuncType {
    /// Parameter types in order.
    pub fn param_types(&self) -> impl ExactSizeIterator<Item = &Type> + Clone {
        self.params.iter().map(|(_, t)| t)
    }
}

/// The runtime identity of a resource type. Two resource types are equal only
/// if they come from the same definition in the same instantiation (or the same
/// host registration).
#[derive(Clone)]
pub struct ResourceType(pub(crate) Arc<ResourceTypeInner>);

pub(crate) struct ResourceTypeInner {
    pub id: u64,
    pub name: String,
    pub kind: ResourceKind,
}

pub(crate) enum ResourceKind {
    /// Defined by a guest component instance (`(type (resource (rep i32) ...))`).
    Guest {
        /// The component instance that implements it (the spec's `rt.impl`).
        instance: usize,
        dtor: Option<wasmi::Func>,
    },
    /// Defined by the host through the linker.
    Host {
        /// A `HostDtor<T>` (see [`crate::component::host`]) for the store's `T`.
        dtor: Option<Arc<dyn std::any::Any + Send + Sync>>,
    },
}

static NEXT_RESOURCE_ID: AtomicU64 = AtomicU64::new(1);

impl ResourceType {
    pub(crate) fn guest(name: &str, instance: usize, dtor: Option<wasmi::Func>) -> Self {
        Self::new(name, ResourceKind::Guest { instance, dtor })
    }

    /// A new host resource type; `dtor` (a `HostDtor<T>`) runs with the rep
    /// when a guest drops an owned handle to it.
    pub(crate) fn host(name: &str, dtor: Option<Arc<dyn std::any::Any + Send + Sync>>) -> Self {
        Self::new(name, ResourceKind::Host { dtor })
    }

    fn new(name: &str, kind: ResourceKind) -> Self {
        let id = NEXT_RESOURCE_ID.fetch_add(1, Ordering::Relaxed);
        ResourceType(Arc::new(ResourceTypeInner {
            id,
            name: name.to_string(),
            kind,
        }))
    }

    /// The name it was defined under (for messages).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The guest component instance implementing this type, if guest-defined.
    pub(crate) fn impl_instance(&self) -> Option<usize> {
        match self.0.kind {
            ResourceKind::Guest { instance, .. } => Some(instance),
            ResourceKind::Host { .. } => None,
        }
    }

    pub(crate) fn describe(&self) -> &'static str {
        match self.0.kind {
            ResourceKind::Guest { .. } => "guest-defined resource",
            ResourceKind::Host { .. } => "host-defined resource",
        }
    }
}

impl PartialEq for ResourceType {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resource {}#{}", self.0.name, self.0.id)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T>(
            f: &mut fmt::Formatter<'_>,
            items: &[T],
            each: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
        ) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                each(f, item)?;
            }
            Ok(())
        }
        match self {
            Type::Bool => f.write_str("bool"),
            Type::S8 => f.write_str("s8"),
            Type::U8 => f.write_str("u8"),
            Type::S16 => f.write_str("s16"),
            Type::U16 => f.write_str("u16"),
            Type::S32 => f.write_str("s32"),
            Type::U32 => f.write_str("u32"),
            Type::S64 => f.write_str("s64"),
            Type::U64 => f.write_str("u64"),
            Type::F32 => f.write_str("f32"),
            Type::F64 => f.write_str("f64"),
            Type::Char => f.write_str("char"),
            Type::String => f.write_str("string"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::FixedList(t, n) => write!(f, "list<{t}, {n}>"),
            Type::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Type::Record(fields) => {
                f.write_str("record { ")?;
                list(f, fields, |f, x| write!(f, "{}: {}", x.name, x.ty))?;
                f.write_str(" }")
            }
            Type::Tuple(ts) => {
                f.write_str("tuple<")?;
                list(f, ts, |f, t| write!(f, "{t}"))?;
                f.write_str(">")
            }
            Type::Variant(cases) => {
                f.write_str("variant { ")?;
                list(f, cases, |f, c| match &c.ty {
                    Some(t) => write!(f, "{}({t})", c.name),
                    None => f.write_str(&c.name),
                })?;
                f.write_str(" }")
            }
            Type::Enum(names) => write!(f, "enum {{ {} }}", names.join(", ")),
            Type::Flags(names) => write!(f, "flags {{ {} }}", names.join(", ")),
            Type::Option(t) => write!(f, "option<{t}>"),
            Type::Result { ok, err } => match (ok, err) {
                (None, None) => f.write_str("result"),
                (Some(o), None) => write!(f, "result<{o}>"),
                (None, Some(e)) => write!(f, "result<_, {e}>"),
                (Some(o), Some(e)) => write!(f, "result<{o}, {e}>"),
            },
            Type::Own(r) => write!(f, "own<{}>", r.name()),
            Type::Borrow(r) => write!(f, "borrow<{}>", r.name()),
        }
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("func(")?;
        for (i, (name, t)) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}: {t}")?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.result {
            write!(f, " -> {r}")?;
        }
        Ok(())
    }
}
