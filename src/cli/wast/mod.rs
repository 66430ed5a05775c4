//! A runner for Component Model `.wast` scripts (the spec's `test/` folder).
//!
//! Each directive is counted as passed, failed or skipped. Skipped means the
//! directive needs something outside the synchronous component model (WASI
//! 0.3 async built-ins, threads, GC, ...): it is never counted as passed.

use crate::{Component, Engine, Instance, Linker, Store, Val};
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use wast::component::WastVal;
use wast::core::{WastArgCore, WastRetCore};
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastRet, Wat};

/// Counts of one or more scripts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, o: Self) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

/// Why a directive did not run.
fn is_unsupported(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("unsupported:")
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// A component under test: instantiated, or skipped for a reason.
enum Current {
    Instance(Instance),
    Skipped(String),
}

struct Runner {
    engine: Engine,
    store: Store<()>,
    linker: Linker<()>,
    definitions: HashMap<String, Result<Component, String>>,
    instances: HashMap<String, Current>,
    current: Option<Current>,
}

/// Runs one script's text; `report` gets a line per failure or skip.
pub fn run_script(name: &str, text: &str, report: &mut dyn FnMut(String)) -> Result<Summary> {
    let buf = ParseBuffer::new(text).map_err(|e| anyhow!("{name}: {e}"))?;
    let wast: Wast = parser::parse(&buf).map_err(|mut e| {
        e.set_path(std::path::Path::new(name));
        e.set_text(text);
        anyhow!("{e}")
    })?;
    let engine = Engine::default();
    let mut r = Runner {
        store: Store::new(&engine, ()),
        linker: Linker::default(),
        engine,
        definitions: HashMap::new(),
        instances: HashMap::new(),
        current: None,
    };
    let mut sum = Summary::default();
    for directive in wast.directives {
        let (line, col) = directive.span().linecol_in(text);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.directive(directive)))
            .unwrap_or_else(|_| Outcome::Fail("panicked".into()));
        match outcome {
            Outcome::Pass => sum.passed += 1,
            Outcome::Fail(why) => {
                sum.failed += 1;
                report(format!("FAIL {name}:{}:{}: {why}", line + 1, col + 1));
            }
            Outcome::Skip(why) => {
                sum.skipped += 1;
                report(format!("skip {name}:{}:{}: {why}", line + 1, col + 1));
            }
        }
    }
    Ok(sum)
}

fn encode(module: &mut QuoteWat<'_>) -> Result<Vec<u8>> {
    module.encode().map_err(|e| anyhow!("{e}"))
}

impl Runner {
    fn load(&self, bytes: &[u8]) -> Result<Component> {
        Component::new(&self.engine, bytes)
    }

    fn instantiate(&mut self, c: &Component) -> Result<Instance> {
        self.linker.instantiate(&mut self.store, c)
    }

    fn directive(&mut self, d: WastDirective<'_>) -> Outcome {
        match d {
            WastDirective::Module(mut m) => {
                let id = quote_id(&m);
                let result = encode(&mut m)
                    .and_then(|b| self.load(&b))
                    .and_then(|c| self.instantiate(&c));
                let (cur, outcome) = match result {
                    Ok(i) => (Current::Instance(i), Outcome::Pass),
                    Err(e) if is_unsupported(&e) => {
                        (Current::Skipped(format!("{e:#}")), Outcome::Skip(format!("{e:#}")))
                    }
                    Err(e) => (Current::Skipped(format!("{e:#}")), Outcome::Fail(format!("{e:#}"))),
                };
                self.set_current(id, cur);
                outcome
            }
            WastDirective::ModuleDefinition(mut m) => {
                let id = quote_id(&m);
                let result = encode(&mut m).and_then(|b| self.load(&b));
                let outcome = match &result {
                    Ok(_) => Outcome::Pass,
                    Err(e) if is_unsupported(e) => Outcome::Skip(format!("{e:#}")),
                    Err(e) => Outcome::Fail(format!("{e:#}")),
                };
                if let Some(id) = id {
                    self.definitions.insert(id, result.map_err(|e| format!("{e:#}")));
                }
                outcome
            }
            WastDirective::ModuleInstance { instance, module, .. } => {
                let Some(def) = module.map(|m| m.name().to_string()) else {
                    return Outcome::Fail("instance of an unnamed definition".into());
                };
                let (cur, outcome) = match self.definitions.get(&def).cloned() {
                    None => return Outcome::Fail(format!("unknown definition ${def}")),
                    Some(Err(e)) => (
                        Current::Skipped(e.clone()),
                        Outcome::Skip(format!("definition ${def} did not load: {e}")),
                    ),
                    Some(Ok(c)) => match self.instantiate(&c) {
                        Ok(i) => (Current::Instance(i), Outcome::Pass),
                        Err(e) if is_unsupported(&e) => {
                            (Current::Skipped(format!("{e:#}")), Outcome::Skip(format!("{e:#}")))
                        }
                        Err(e) => (Current::Skipped(format!("{e:#}")), Outcome::Fail(format!("{e:#}"))),
                    },
                };
                self.set_current(instance.map(|i| i.name().to_string()), cur);
                outcome
            }
            WastDirective::AssertMalformed { mut module, .. } | WastDirective::AssertInvalid { mut module, .. } => {
                match encode(&mut module).and_then(|b| self.load(&b)) {
                    Err(e) if is_unsupported(&e) => Outcome::Skip(format!("{e:#}")),
                    Err(_) => Outcome::Pass,
                    Ok(_) => Outcome::Fail("expected the component to be rejected, but it loaded".into()),
                }
            }
            WastDirective::AssertUnlinkable { mut module, .. } => {
                let loaded = module.encode().map_err(|e| anyhow!("{e}")).and_then(|b| self.load(&b));
                match loaded {
                    Err(e) if is_unsupported(&e) => Outcome::Skip(format!("{e:#}")),
                    Err(e) => Outcome::Fail(format!("expected a link error, but it did not load: {e:#}")),
                    Ok(c) => match self.instantiate(&c) {
                        Err(e) if is_unsupported(&e) => Outcome::Skip(format!("{e:#}")),
                        Err(_) => Outcome::Pass,
                        Ok(_) => Outcome::Fail("expected a link error, but it instantiated".into()),
                    },
                }
            }
            WastDirective::Invoke(invoke) => {
                match self.invoke(invoke.module.map(|m| m.name()), invoke.name, &invoke.args) {
                    Ok(_) => Outcome::Pass,
                    Err(Skip(why)) => Outcome::Skip(why),
                    Err(Failed(e)) => Outcome::Fail(format!("{e:#}")),
                }
            }
            WastDirective::AssertTrap { exec, message, .. } => {
                let result = match exec {
                    WastExecute::Invoke(invoke) => {
                        self.invoke(invoke.module.map(|m| m.name()), invoke.name, &invoke.args)
                    }
                    WastExecute::Wat(mut wat) => self.instantiate_wat(&mut wat).map(|_| vec![]),
                    WastExecute::Get { .. } => return Outcome::Skip("core `get` is not a component directive".into()),
                };
                match result {
                    Ok(vals) => Outcome::Fail(format!("expected trap `{message}`, got {vals:?}")),
                    Err(Skip(why)) => Outcome::Skip(why),
                    Err(Failed(e)) => {
                        let text = format!("{e:#}");
                        let want = message.strip_prefix("wasm trap: ").unwrap_or(message);
                        if text.contains(want) {
                            Outcome::Pass
                        } else {
                            Outcome::Fail(format!("expected trap `{message}`, got `{text}`"))
                        }
                    }
                }
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let got = match exec {
                    WastExecute::Invoke(invoke) => {
                        self.invoke(invoke.module.map(|m| m.name()), invoke.name, &invoke.args)
                    }
                    WastExecute::Wat(mut wat) => self.instantiate_wat(&mut wat).map(|_| vec![]),
                    WastExecute::Get { .. } => return Outcome::Skip("core `get` is not a component directive".into()),
                };
                match got {
                    Ok(vals) => match compare(&vals, &results) {
                        Ok(()) => Outcome::Pass,
                        Err(e) => Outcome::Fail(format!("{e:#}")),
                    },
                    Err(Skip(why)) => Outcome::Skip(why),
                    Err(Failed(e)) => Outcome::Fail(format!("{e:#}")),
                }
            }
            other => Outcome::Skip(format!("directive `{}` is not supported", directive_name(&other))),
        }
    }

    fn set_current(&mut self, id: Option<String>, cur: Current) {
        let dup = match &cur {
            Current::Instance(i) => Current::Instance(Instance {
                id: i.id,
                exports: i.exports.clone(),
            }),
            Current::Skipped(s) => Current::Skipped(s.clone()),
        };
        if let Some(id) = id {
            self.instances.insert(id, dup);
        }
        self.current = Some(cur);
    }

    fn instantiate_wat(&mut self, wat: &mut Wat<'_>) -> Result<Instance, Failure> {
        let bytes = wat.encode().map_err(|e| Failed(anyhow!("{e}")))?;
        let c = self.load(&bytes).map_err(classify)?;
        let i = self.instantiate(&c).map_err(classify)?;
        self.current = Some(Current::Instance(Instance {
            id: i.id,
            exports: i.exports.clone(),
        }));
        Ok(i)
    }

    fn invoke(&mut self, module: Option<&str>, name: &str, args: &[WastArg<'_>]) -> Result<Vec<Val>, Failure> {
        let cur = match module {
            Some(m) => self.instances.get(m),
            None => self.current.as_ref(),
        };
        let inst = match cur {
            Some(Current::Instance(i)) => i,
            Some(Current::Skipped(why)) => return Err(Skip(format!("component was not instantiated: {why}"))),
            None => return Err(Failed(anyhow!("no component instance to invoke"))),
        };
        let func = inst
            .get_func(&self.store, name)
            .ok_or_else(|| Failed(anyhow!("no exported function `{name}`")))?;
        let vals = args.iter().map(arg_val).collect::<Result<Vec<_>>>().map_err(Failed)?;
        func.call(&mut self.store, &vals).map_err(classify)
    }
}

enum Failure {
    Skip(String),
    Failed(anyhow::Error),
}
use Failure::{Failed, Skip};

fn classify(e: anyhow::Error) -> Failure {
    if is_unsupported(&e) {
        Skip(format!("{e:#}"))
    } else {
        Failed(e)
    }
}

fn quote_id(m: &QuoteWat<'_>) -> Option<String> {
    match m {
        QuoteWat::Wat(Wat::Component(c)) => c.id.map(|i| i.name().to_string()),
        QuoteWat::Wat(Wat::Module(m)) => m.id.map(|i| i.name().to_string()),
        _ => None,
    }
}

fn directive_name(d: &WastDirective<'_>) -> &'static str {
    match d {
        WastDirective::Register { .. } => "register",
        WastDirective::AssertExhaustion { .. } => "assert_exhaustion",
        WastDirective::AssertException { .. } => "assert_exception",
        WastDirective::AssertSuspension { .. } => "assert_suspension",
        WastDirective::Thread(_) => "thread",
        WastDirective::Wait { .. } => "wait",
        WastDirective::AssertInvalidCustom { .. } => "assert_invalid_custom",
        WastDirective::AssertMalformedCustom { .. } => "assert_malformed_custom",
        _ => "unknown",
    }
}

fn arg_val(a: &WastArg<'_>) -> Result<Val> {
    match a {
        WastArg::Component(v) => wast_val(v),
        WastArg::Core(WastArgCore::I32(i)) => Ok(Val::S32(*i)),
        WastArg::Core(WastArgCore::I64(i)) => Ok(Val::S64(*i)),
        _ => bail!("unsupported core argument"),
    }
}

/// Converts a script value into a [`Val`].
pub fn wast_val(v: &WastVal<'_>) -> Result<Val> {
    let boxed = |v: &Option<Box<WastVal<'_>>>| -> Result<Option<Box<Val>>> {
        v.as_deref().map(|v| wast_val(v).map(Box::new)).transpose()
    };
    Ok(match v {
        WastVal::Bool(b) => Val::Bool(*b),
        WastVal::U8(x) => Val::U8(*x),
        WastVal::S8(x) => Val::S8(*x),
        WastVal::U16(x) => Val::U16(*x),
        WastVal::S16(x) => Val::S16(*x),
        WastVal::U32(x) => Val::U32(*x),
        WastVal::S32(x) => Val::S32(*x),
        WastVal::U64(x) => Val::U64(*x),
        WastVal::S64(x) => Val::S64(*x),
        WastVal::F32(x) => Val::Float32(f32::from_bits(x.bits)),
        WastVal::F64(x) => Val::Float64(f64::from_bits(x.bits)),
        WastVal::Char(c) => Val::Char(*c),
        WastVal::String(s) => Val::String(s.to_string()),
        WastVal::List(vs) => Val::List(vs.iter().map(wast_val).collect::<Result<_>>()?),
        WastVal::Map(kvs) => Val::Map(
            kvs.iter()
                .map(|(k, v)| Ok((wast_val(k)?, wast_val(v)?)))
                .collect::<Result<_>>()?,
        ),
        WastVal::Record(fs) => Val::Record(
            fs.iter()
                .map(|(n, v)| Ok((n.to_string(), wast_val(v)?)))
                .collect::<Result<_>>()?,
        ),
        WastVal::Tuple(vs) => Val::Tuple(vs.iter().map(wast_val).collect::<Result<_>>()?),
        WastVal::Variant(n, v) => Val::Variant(n.to_string(), boxed(v)?),
        WastVal::Enum(n) => Val::Enum(n.to_string()),
        WastVal::Option(v) => Val::Option(boxed(v)?),
        WastVal::Result(Ok(v)) => Val::Result(Ok(boxed(v)?)),
        WastVal::Result(Err(v)) => Val::Result(Err(boxed(v)?)),
        WastVal::Flags(fs) => Val::Flags(fs.iter().map(|s| s.to_string()).collect()),
    })
}

fn compare(got: &[Val], want: &[WastRet<'_>]) -> Result<()> {
    if got.len() != want.len() {
        bail!("expected {} results, got {}: {got:?}", want.len(), got.len());
    }
    for (g, w) in got.iter().zip(want) {
        let w = match w {
            WastRet::Component(v) => wast_val(v)?,
            WastRet::Core(WastRetCore::I32(i)) => Val::S32(*i),
            _ => bail!("unsupported expected result"),
        };
        if !same(g, &w) {
            bail!("expected {w}, got {g}");
        }
    }
    Ok(())
}

/// Equality where NaNs match NaNs and flags compare as sets.
fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Float32(x), Val::Float32(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
        (Val::Float64(x), Val::Float64(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
        (Val::List(x), Val::List(y)) | (Val::Tuple(x), Val::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Val::Record(x), Val::Record(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((n, a), (m, b))| n == m && same(a, b))
        }
        (Val::Map(x), Val::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        (Val::Variant(n, x), Val::Variant(m, y)) => n == m && same_opt(x, y),
        (Val::Option(x), Val::Option(y)) => same_opt(x, y),
        (Val::Result(Ok(x)), Val::Result(Ok(y))) | (Val::Result(Err(x)), Val::Result(Err(y))) => same_opt(x, y),
        (Val::Flags(x), Val::Flags(y)) => {
            let mut x = x.clone();
            let mut y = y.clone();
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}

fn same_opt(a: &Option<Box<Val>>, b: &Option<Box<Val>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}
