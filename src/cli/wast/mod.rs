//! A runner for Component Model `.wast` scripts: the spec's `test/` folder
//! and wasmtime's `tests/misc_testsuite/component-model`.
//!
//! Each directive is counted as passed, failed or skipped. Skipped means the
//! directive needs something outside the synchronous component model (WASI
//! 0.3 async built-ins, threads, GC, exceptions, 64-bit memories): it is
//! never counted as passed. As in wasmtime's runner, every instantiation
//! gets a store of its own, the [`spectest`] host is linked, and a named
//! component's exported core modules and resource types are registered
//! under its name for later components to import.

mod spectest;
mod values;

use crate::{Component, Engine, Instance, Limits, Linker, Store, Val};
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use values::{arg_val, compare};
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, Wat};

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

/// Core and component proposals wasmi or this runtime do not implement. A
/// script enabling one (`;;! gc = true`) has its load errors about features
/// counted as skipped, not failed.
const UNSUPPORTED_FEATURES: &[&str] = &[
    "gc",
    "exceptions",
    "function_references",
    "memory64",
    "component_model_memory64",
    "threads",
    "shared_everything_threads",
    "component_model_threading",
    "stack_switching",
];

/// The `;;! name = value` settings at the top of a script.
struct Settings {
    unsupported: Vec<&'static str>,
    /// `hogs_memory`: the script grows memories far past the usual cap.
    hogs_memory: bool,
}

impl Settings {
    fn of(text: &str) -> Self {
        let on: Vec<&str> = text
            .lines()
            .map_while(|l| l.strip_prefix(";;!"))
            .filter_map(|l| l.split_once('='))
            .filter(|(_, v)| v.trim() == "true")
            .map(|(k, _)| k.trim())
            .collect();
        Settings {
            unsupported: UNSUPPORTED_FEATURES
                .iter()
                .copied()
                .filter(|f| on.contains(f))
                .collect(),
            hogs_memory: on.contains(&"hogs_memory"),
        }
    }

    /// A load error that is about a feature the script enabled and we lack.
    fn needs_missing_feature(&self, e: &anyhow::Error) -> Option<String> {
        if self.unsupported.is_empty() {
            return None;
        }
        let text = format!("{e:#}");
        let about_features = ["feature", "proposal", "not supported", "required", "not enabled"]
            .iter()
            .any(|w| text.contains(w));
        about_features.then(|| format!("unsupported: needs {}: {text}", self.unsupported.join(", ")))
    }
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// A component under test, in a store of its own; or why it is absent.
enum Current {
    Live(Box<Store<()>>, Instance),
    Skipped(String),
}

struct Runner {
    engine: Engine,
    linker: Linker<()>,
    settings: Settings,
    definitions: HashMap<String, Result<Component, String>>,
    /// Every component instantiated so far; `current` and `named` index it.
    instances: Vec<Current>,
    named: HashMap<String, usize>,
    current: Option<usize>,
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
    let mut linker = Linker::default();
    spectest::link(&mut linker, &engine)?;
    let mut r = Runner {
        linker,
        engine,
        settings: Settings::of(text),
        definitions: HashMap::new(),
        instances: Vec::new(),
        named: HashMap::new(),
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

/// A load or instantiation error as an outcome.
fn error_outcome(e: &anyhow::Error) -> Outcome {
    if is_unsupported(e) {
        Outcome::Skip(format!("{e:#}"))
    } else {
        Outcome::Fail(format!("{e:#}"))
    }
}

/// Whether an error message says what a script expects (wasmtime matches
/// a substring of the error chain).
fn says(e: &anyhow::Error, expected: &str) -> bool {
    let want = expected.strip_prefix("wasm trap: ").unwrap_or(expected);
    format!("{e:#}").contains(want)
}

impl Runner {
    fn load(&self, bytes: &[u8]) -> Result<Component> {
        Component::new(&self.engine, bytes).map_err(|e| match self.settings.needs_missing_feature(&e) {
            Some(why) => anyhow!(why),
            None => e,
        })
    }

    /// Instantiates `c` in a new store.
    fn instantiate(&self, c: &Component) -> Result<(Store<()>, Instance)> {
        let mut store = Store::new(&self.engine, ());
        if self.settings.hogs_memory {
            store.set_limits(Limits {
                memory_bytes: 1 << 33,
                ..Limits::default()
            });
        }
        let instance = self.linker.instantiate(&mut store, c)?;
        Ok((store, instance))
    }

    /// The skipped named component a link error is about, if any: a
    /// component importing one is skipped too.
    fn import_of_skipped(&self, e: &anyhow::Error) -> Option<String> {
        let text = format!("{e:#}");
        self.named
            .iter()
            .filter(|(_, i)| matches!(self.instances[**i], Current::Skipped(_)))
            .map(|(name, _)| name)
            .find(|name| text.contains(&format!("import `{name}`")) || text.contains(&format!("import `{name}#")))
            .cloned()
    }

    /// Makes `cur` the current component, under `name` if it has one; a
    /// named live instance's core modules and resource types become a
    /// linker instance of that name.
    fn set_current(&mut self, name: Option<String>, cur: Current) {
        if let (Some(name), Current::Live(store, instance)) = (&name, &cur) {
            let registered = self.linker.instance(name);
            for export in instance.export_names::<()>() {
                if let Some(m) = instance.get_module(store, &export) {
                    registered.module(&export, &m);
                } else if let Some(rt) = instance.get_resource(store, &export) {
                    registered.resource_type(&export, rt);
                }
            }
        }
        self.instances.push(cur);
        let index = self.instances.len() - 1;
        if let Some(name) = name {
            self.named.insert(name, index);
        }
        self.current = Some(index);
        // Stores no name or `current` reaches any more are dropped: scripts
        // that grow memories to 4 GiB re-instantiate under one name.
        for (i, slot) in self.instances.iter_mut().enumerate() {
            if Some(i) != self.current && !self.named.values().any(|n| *n == i) && matches!(slot, Current::Live(..)) {
                *slot = Current::Skipped("replaced by a later component".into());
            }
        }
    }

    /// Instantiates a loaded (or failed) component and makes it current.
    fn start(&mut self, name: Option<String>, loaded: Result<Component>) -> Outcome {
        let result = loaded.and_then(|c| self.instantiate(&c));
        let (cur, outcome) = match result {
            Ok((store, instance)) => (Current::Live(Box::new(store), instance), Outcome::Pass),
            Err(e) => match self.import_of_skipped(&e) {
                Some(dep) => (
                    Current::Skipped(format!("{e:#}")),
                    Outcome::Skip(format!("imports ${dep}, which was skipped")),
                ),
                None => (Current::Skipped(format!("{e:#}")), error_outcome(&e)),
            },
        };
        self.set_current(name, cur);
        outcome
    }

    fn directive(&mut self, d: WastDirective<'_>) -> Outcome {
        match d {
            WastDirective::Module(mut m) => {
                let name = quote_id(&m);
                let loaded = encode(&mut m).and_then(|b| self.load(&b));
                self.start(name, loaded)
            }
            WastDirective::ModuleDefinition(mut m) => {
                let name = quote_id(&m);
                let result = encode(&mut m).and_then(|b| self.load(&b));
                let outcome = match &result {
                    Ok(_) => Outcome::Pass,
                    Err(e) => error_outcome(e),
                };
                if let Some(name) = name {
                    self.definitions.insert(name, result.map_err(|e| format!("{e:#}")));
                }
                outcome
            }
            WastDirective::ModuleInstance { instance, module, .. } => {
                let Some(def) = module.map(|m| m.name().to_string()) else {
                    return Outcome::Fail("instance of an unnamed definition".into());
                };
                let name = instance.map(|i| i.name().to_string());
                match self.definitions.get(&def).cloned() {
                    None => Outcome::Fail(format!("unknown definition ${def}")),
                    Some(Err(e)) => {
                        self.set_current(name, Current::Skipped(e.clone()));
                        Outcome::Skip(format!("definition ${def} did not load: {e}"))
                    }
                    Some(Ok(c)) => self.start(name, Ok(c)),
                }
            }
            WastDirective::AssertMalformed { mut module, .. } | WastDirective::AssertInvalid { mut module, .. } => {
                match encode(&mut module).and_then(|b| self.load(&b)) {
                    Err(e) if is_unsupported(&e) => Outcome::Skip(format!("{e:#}")),
                    Err(_) => Outcome::Pass,
                    Ok(_) => Outcome::Fail("expected the component to be rejected, but it loaded".into()),
                }
            }
            WastDirective::AssertUnlinkable {
                mut module, message, ..
            } => {
                let loaded = module.encode().map_err(|e| anyhow!("{e}")).and_then(|b| self.load(&b));
                match loaded {
                    Err(e) if is_unsupported(&e) => Outcome::Skip(format!("{e:#}")),
                    Err(e) => Outcome::Fail(format!("expected a link error, but it did not load: {e:#}")),
                    Ok(c) => match self.instantiate(&c) {
                        Err(e) if is_unsupported(&e) => Outcome::Skip(format!("{e:#}")),
                        Err(e) if says(&e, message) => Outcome::Pass,
                        Err(e) => Outcome::Fail(format!("expected link error `{message}`, got `{e:#}`")),
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
            WastDirective::AssertTrap { exec, message, .. } => match self.execute(exec) {
                Ok(vals) => Outcome::Fail(format!("expected trap `{message}`, got {vals:?}")),
                Err(Skip(why)) => Outcome::Skip(why),
                Err(Failed(e)) if says(&e, message) => Outcome::Pass,
                Err(Failed(e)) => Outcome::Fail(format!("expected trap `{message}`, got `{e:#}`")),
            },
            WastDirective::AssertReturn { exec, results, .. } => match self.execute(exec) {
                Ok(vals) => match compare(&vals, &results) {
                    Ok(()) => Outcome::Pass,
                    Err(e) => Outcome::Fail(format!("{e:#}")),
                },
                Err(Skip(why)) => Outcome::Skip(why),
                Err(Failed(e)) => Outcome::Fail(format!("{e:#}")),
            },
            other => Outcome::Skip(format!("directive `{}` is not supported", directive_name(&other))),
        }
    }

    /// An `invoke`, or a component to instantiate (`assert_trap` on a
    /// component expects its start to trap).
    fn execute(&mut self, exec: WastExecute<'_>) -> Result<Vec<Val>, Failure> {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(invoke.module.map(|m| m.name()), invoke.name, &invoke.args),
            WastExecute::Wat(mut wat) => {
                let bytes = wat.encode().map_err(|e| Failed(anyhow!("{e}")))?;
                let c = self.load(&bytes).map_err(classify)?;
                let (store, instance) = self.instantiate(&c).map_err(classify)?;
                self.set_current(None, Current::Live(Box::new(store), instance));
                Ok(vec![])
            }
            WastExecute::Get { .. } => Err(Skip("core `get` is not a component directive".into())),
        }
    }

    fn invoke(&mut self, module: Option<&str>, name: &str, args: &[WastArg<'_>]) -> Result<Vec<Val>, Failure> {
        let index = match module {
            Some(m) => self.named.get(m).copied(),
            None => self.current,
        };
        let (store, inst) = match index.and_then(|i| self.instances.get_mut(i)) {
            Some(Current::Live(store, inst)) => (store, inst),
            Some(Current::Skipped(why)) => return Err(Skip(format!("component was not instantiated: {why}"))),
            None => return Err(Failed(anyhow!("no component instance to invoke"))),
        };
        let func = inst
            .get_func(store, name)
            .ok_or_else(|| Failed(anyhow!("no exported function `{name}`")))?;
        let vals = args.iter().map(arg_val).collect::<Result<Vec<_>>>().map_err(Failed)?;
        func.call(store, &vals).map_err(classify)
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
