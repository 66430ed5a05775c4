//! Lua functions: `function.lua` / `library.lua` entries, `funcs` between
//! Lua and WASM both ways (WAT components, the C registry guest and the
//! componentize-py guest), the sandbox, the limits, and suspension.

mod common;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wippy_wasm::registry::Registry;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder of its own for each call (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("wippy-lua-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("bin")).unwrap();
    d
}

/// A registry of `entries` (YAML, indented as list items) in namespace `l`,
/// with the example's hello and relay WASM functions.
fn registry(dir: &Path, entries: &str) -> PathBuf {
    for f in ["hello.wasm", "relay.wasm"] {
        std::fs::copy(root().join("examples/registry/bin").join(f), dir.join("bin").join(f)).unwrap();
    }
    let (hello, relay) = (
        common::sha256(&dir.join("bin/hello.wasm")),
        common::sha256(&dir.join("bin/relay.wasm")),
    );
    let file = dir.join("_index.yaml");
    std::fs::write(
        &file,
        format!(
            "namespace: l\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: ./bin\n  - name: hello\n    kind: function.wasm\n    fs: bin\n    path: /hello.wasm\n    hash: sha256:{hello}\n    method: hello\n  - name: relay\n    kind: function.wasm\n    fs: bin\n    path: /relay.wasm\n    hash: sha256:{relay}\n    method: relay\n    imports: [funcs]\n{entries}"
        ),
    )
    .unwrap();
    file
}

/// One inline `function.lua` entry.
fn lua(name: &str, method: &str, source: &str, extra: &str) -> String {
    let body: String = source.lines().map(|l| format!("      {l}\n")).collect();
    format!("  - name: {name}\n    kind: function.lua\n    method: {method}\n{extra}    source: |\n{body}")
}

#[test]
fn the_example_registry_has_lua_and_wasm_calling_each_other() {
    let config = root().join("examples/lua");
    let r = Registry::load(&config).unwrap();
    assert_eq!(
        r.call_json("demo:greet", &[json!("wippy")]).unwrap(),
        json!({"greeting": "hello, wippy", "shouted": "HELLO, WIPPY!", "words": 2})
    );
    // WASM → Lua: a value, and an error as `err`.
    assert_eq!(
        r.call_json("demo:relay", &[json!("demo:shout"), json!("abc")]).unwrap(),
        json!({"ok": "ABC!"})
    );
    assert_eq!(
        r.call_json("demo:relay", &[json!("demo:shout"), json!("")]).unwrap(),
        json!({"err": "`demo:shout`: nothing to shout"})
    );
    let (status, out, err) = common::cli(&["call", "-c", config.to_str().unwrap(), "demo:greet", "\"cli\""]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out.trim(),
        r#"{"greeting":"hello, cli","shouted":"HELLO, CLI!","words":2}"#
    );
    assert!(
        err.contains("INFO [demo:greet] greeted {\"name\":\"cli\"}"),
        "logger goes to stderr: {err}"
    );
}

#[test]
fn arguments_and_results_map_like_json() {
    let dir = scratch("values");
    let src = r#"local function echo(...) return {...} end
local function kinds(a, b, c, d)
  return { math.type(a), math.type(b), type(c), type(d), d and d.k }
end
local function shapes() return { list = {1, 2, 3}, obj = {x = 1}, sparse = {[1] = "a", [3] = "c"}, empty = {} } end
local function fail(x) return nil, "bad " .. x end
local function raise() error("boom") end
local function raise_table() error({ code = 7 }) end
return { echo = echo, kinds = kinds, shapes = shapes, fail = fail, raise = raise, raise_table = raise_table }"#;
    let file = dir.join("values.lua");
    std::fs::write(&file, src).unwrap();
    let mut entries = String::new();
    for m in ["echo", "kinds", "shapes", "fail", "raise", "raise_table"] {
        entries += &format!("  - name: {m}\n    kind: function.lua\n    source: file://values.lua\n    method: {m}\n");
    }
    let r = Registry::load(registry(&dir, &entries)).unwrap();
    assert_eq!(
        r.call_json("l:kinds", &[json!(1), json!(1.5), json!(null), json!({"k": [true]})])
            .unwrap(),
        json!(["integer", "float", "nil", "table", [true]])
    );
    assert_eq!(r.call_json("l:echo", &[json!("a"), json!(2)]).unwrap(), json!(["a", 2]));
    assert_eq!(
        r.call_json("l:shapes", &[]).unwrap(),
        json!({"list": [1, 2, 3], "obj": {"x": 1}, "sparse": {"1": "a", "3": "c"}, "empty": []})
    );
    let err = format!("{:#}", r.call_json("l:fail", &[json!("input")]).unwrap_err());
    assert!(err.contains("`l:fail`: bad input"), "{err}");
    let err = format!("{:#}", r.call_json("l:raise", &[]).unwrap_err());
    assert!(
        err.contains("`l:raise`") && err.contains("values.lua:7: boom"),
        "entry and file:line: {err}"
    );
    let err = format!("{:#}", r.call_json("l:raise_table", &[]).unwrap_err());
    assert!(err.contains("l:raise_table"), "{err}");
}

#[test]
fn funcs_reaches_wasm_lua_and_natives_and_fails_with_nil_err() {
    let dir = scratch("funcs");
    let entries = [
        lua(
            "caller",
            "main",
            r#"local funcs = require("funcs")
return { main = function(target, ...)
  local r, err = funcs.call(target, ...)
  if err then return { failed = err } end
  return { result = r }
end }"#,
            "    modules: [funcs]\n",
        ),
        lua("double", "main", "return { main = function(x) return x * 2 end }", ""),
    ]
    .concat();
    let r = Registry::load(registry(&dir, &entries)).unwrap();
    r.register_native("l:native", |args| Ok(json!({"native": args})));
    let call = |args: &[serde_json::Value]| r.call_json("l:caller", args).unwrap();
    assert_eq!(call(&[json!("l:hello"), json!("lua")]), json!({"result": "hello, lua"}));
    assert_eq!(call(&[json!("l:double"), json!(21)]), json!({"result": 42}));
    assert_eq!(call(&[json!("l:native"), json!(1)]), json!({"result": {"native": [1]}}));
    // WASM results: a `result` is {ok = ...} / {err = ...}.
    assert_eq!(
        call(&[json!("l:relay"), json!("l:double"), json!("5")]),
        json!({"result": {"ok": "10"}}),
        "WASM → Lua gets a string; a number result comes back as text"
    );
    for (args, want) in [
        (vec![json!("l:nobody")], "unknown function `l:nobody`"),
        (vec![json!("nonsense")], "unknown function `nonsense`"),
        (vec![json!("l:hello"), json!(5)], "expected string"),
    ] {
        let got = call(&args);
        assert!(
            got["failed"].as_str().is_some_and(|e| e.contains(want)),
            "{args:?}: {got}"
        );
    }
}

#[test]
fn the_sandbox_refuses_what_it_should() {
    let dir = scratch("sandbox");
    let probe = r#"return { main = function()
  local seen = {}
  for _, name in ipairs({"io", "debug", "package", "dofile", "loadfile", "collectgarbage"}) do
    seen[name] = _G[name] ~= nil
  end
  seen.os_execute = os.execute ~= nil
  seen.os_getenv = os.getenv ~= nil
  seen.os_time = os.time ~= nil
  seen.string_dump = string.dump ~= nil
  seen.string_mt = getmetatable("")
  local ok = pcall(require, "os")
  seen.require_os = ok
  local f, err = load(string.char(27) .. "Lua")
  seen.binary = f ~= nil
  seen.binary_err = err
  local g = load("return 1 + 1")
  seen.text = g and g()
  seen.leak = leaked
  leaked = "set by an earlier call"
  string.upper = function() return "patched" end
  return seen
end }"#;
    let r = Registry::load(registry(&dir, &lua("probe", "main", probe, ""))).unwrap();
    let first = r.call_json("l:probe", &[]).unwrap();
    for name in [
        "io",
        "debug",
        "package",
        "dofile",
        "loadfile",
        "collectgarbage",
        "os_execute",
        "os_getenv",
    ] {
        assert_eq!(first[name], json!(false), "{name}: {first}");
    }
    assert_eq!(first["os_time"], json!(true));
    assert_eq!(first["string_dump"], json!(false));
    assert_eq!(first["string_mt"], json!(false), "the string metatable is hidden");
    assert_eq!(first["require_os"], json!(false));
    assert_eq!(
        (first["binary"].clone(), first["text"].clone()),
        (json!(false), json!(2))
    );
    assert!(first["binary_err"].as_str().unwrap().contains("binary"), "{first}");
    // Nothing a call sets survives into the next.
    let second = r.call_json("l:probe", &[]).unwrap();
    assert_eq!(second["leak"], json!(null), "{second}");
    let upper = lua(
        "upper",
        "main",
        "return { main = function(s) return string.upper(s) end }",
        "",
    );
    let r = Registry::load(registry(
        &scratch("sandbox2"),
        &format!("{}{upper}", lua("probe", "main", probe, "")),
    ))
    .unwrap();
    r.call_json("l:probe", &[]).unwrap();
    assert_eq!(
        r.call_json("l:upper", &[json!("x")]).unwrap(),
        json!("X"),
        "patched libraries are per call"
    );
    assert_eq!(
        r.pool_stats("l:probe").unwrap().created,
        1,
        "one state served both calls"
    );
}

#[test]
fn limits_hold_and_the_next_call_works() {
    let dir = scratch("limits");
    let spin = r#"return { main = function(kind)
  if kind == "loop" then while true do end end
  if kind == "pcall" then while true do pcall(function() while true do end end) end end
  if kind == "grow" then local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 100) .. i end end
  return "ok"
end }"#;
    let entries = [
        lua(
            "spin",
            "main",
            spin,
            "    options:\n      limits:\n        max_execution_ms: 200\n",
        ),
        lua(
            "hog",
            "main",
            spin,
            "    options:\n      limits:\n        memory_bytes: 8388608\n",
        ),
    ]
    .concat();
    let r = Registry::load(registry(&dir, &entries)).unwrap();
    for kind in ["loop", "pcall"] {
        let start = Instant::now();
        let err = format!("{:#}", r.call_json("l:spin", &[json!(kind)]).unwrap_err());
        assert!(err.contains("max_execution_ms"), "{kind}: {err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{kind}: {:?}",
            start.elapsed()
        );
        assert_eq!(r.call_json("l:spin", &[json!("fine")]).unwrap(), json!("ok"));
    }
    assert!(
        r.pool_stats("l:spin").unwrap().created >= 3,
        "each failed call discarded its state"
    );
    let err = format!("{:#}", r.call_json("l:hog", &[json!("grow")]).unwrap_err());
    assert!(err.contains("`l:hog`") && err.contains("memory"), "{err}");
    assert_eq!(r.call_json("l:hog", &[json!("fine")]).unwrap(), json!("ok"));
}

#[test]
fn a_busy_lua_call_does_not_starve_another_on_the_same_thread() {
    let dir = scratch("slices");
    let entries = [
        lua(
            "busy",
            "main",
            "return { main = function() local x = 0 for i = 1, 3e7 do x = x + i end return x end }",
            "",
        ),
        lua("quick", "main", "return { main = function() return 1 end }", ""),
    ]
    .concat();
    let r = Registry::load(registry(&dir, &entries)).unwrap();
    let ex = async_executor::Executor::new();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (r1, o1) = (r.clone(), order.clone());
    let busy = ex.spawn(async move {
        r1.call_json_value("l:busy", vec![]).await.unwrap();
        o1.lock().unwrap().push("busy");
    });
    let (r2, o2) = (r.clone(), order.clone());
    let quick = ex.spawn(async move {
        futures_lite::future::yield_now().await;
        r2.call_json_value("l:quick", vec![]).await.unwrap();
        o2.lock().unwrap().push("quick");
    });
    wippy_wasm::dispatch::block_on(ex.run(async {
        busy.await;
        quick.await;
    }));
    assert_eq!(
        *order.lock().unwrap(),
        ["quick", "busy"],
        "the busy call yielded its slices"
    );
}

#[test]
fn a_thousand_lua_calls_into_sleeping_wasm_share_one_thread() {
    let dir = scratch("naps");
    std::fs::copy(root().join("tests/nap.wat"), dir.join("nap.wat")).unwrap();
    let entries = format!(
        "  - name: nap\n    kind: function.wat\n    source: file://nap.wat\n    method: nap\n    imports: [wasi:clocks, wasi:io]\n    pool:\n      type: lazy\n      max_size: 1000\n{}",
        lua(
            "napper",
            "main",
            r#"local funcs = require("funcs")
return { main = function(ms) local r, err = funcs.call("l:nap", ms) return r or err end }"#,
            "    modules: [funcs]\n    pool:\n      type: lazy\n      max_size: 1000\n",
        )
    );
    let r = Registry::load(registry(&dir, &entries)).unwrap();
    let run = |n: usize| {
        let ex = async_executor::Executor::new();
        let start = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let r = r.clone();
                ex.spawn(async move { r.call_json_value("l:napper", vec![json!(100)]).await })
            })
            .collect();
        let out = wippy_wasm::dispatch::block_on(ex.run(async {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        }));
        (start.elapsed(), out)
    };
    run(1000); // warm: a state and an instance per concurrent call
    let (took, out) = run(1000);
    assert!(
        out.iter().all(|v| matches!(v, Ok(v) if *v == json!(100))),
        "{:?}",
        out.iter().find(|v| v.is_err())
    );
    eprintln!("1000 concurrent Lua → sleeping WASM calls (100 ms) on one thread: {took:?}");
    // One after another they would take 100 s; the bound leaves room for
    // a loaded machine.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn time_sleep_suspends_and_nesting_counts_toward_the_depth_limit() {
    let dir = scratch("sleep");
    let entries = [
        lua(
            "sleeper",
            "main",
            r#"local time = require("time")
return { main = function(ms) local t0 = time.now() time.sleep(ms) return time.now() - t0 end }"#,
            "    modules: [time]\n    pool:\n      max_size: 100\n",
        ),
        lua(
            "recurse",
            "main",
            r#"local funcs = require("funcs")
return { main = function(n) local r, err = funcs.call("l:relay", "l:recurse", tostring(n + 1)) if err then return err end return r end }"#,
            "    modules: [funcs]\n",
        ),
    ]
    .concat();
    let r = Registry::load(registry(&dir, &entries)).unwrap();
    let ex = async_executor::Executor::new();
    let start = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let r = r.clone();
            ex.spawn(async move { r.call_json_value("l:sleeper", vec![json!(100)]).await })
        })
        .collect();
    wippy_wasm::dispatch::block_on(ex.run(async {
        for t in tasks {
            let slept = t.await.unwrap().as_f64().unwrap();
            assert!(slept >= 0.09, "{slept}");
        }
    }));
    assert!(start.elapsed() < Duration::from_millis(600), "{:?}", start.elapsed());
    // Lua → WASM → Lua → ... until the depth limit answers `err`.
    let out = r.call_json("l:recurse", &[json!(0)]).unwrap().to_string();
    assert!(out.contains("call depth limit"), "{out}");
}

#[test]
fn bad_lua_entries_give_one_clear_error_each() {
    let dir = scratch("bad");
    std::fs::write(
        dir.join("syntax.lua"),
        "local x = \nreturn {main = function() end}\nend end\n",
    )
    .unwrap();
    std::fs::write(
        dir.parent()
            .unwrap()
            .join(format!("outside-{}.lua", std::process::id())),
        "return {}",
    )
    .unwrap();
    let outside = format!("file://../outside-{}.lua", std::process::id());
    let entries = format!(
        "  - name: syntax\n    kind: function.lua\n    source: file://syntax.lua\n    method: main\n  - name: nomethod\n    kind: function.lua\n    source: \"return {{ other = function() end }}\"\n    method: main\n  - name: outside\n    kind: function.lua\n    source: {outside}\n    method: main\n  - name: undeclared\n    kind: function.lua\n    source: |\n      local json = require(\"json\")\n      return {{ main = function() return 1 end }}\n    method: main\n  - name: unknown_module\n    kind: function.lua\n    source: \"return {{main = print}}\"\n    method: main\n    modules: [sql]\n  - name: missing_lib\n    kind: function.lua\n    source: \"return {{main = print}}\"\n    method: main\n    imports:\n      helpers: l:nowhere\n  - name: nomethod_field\n    kind: function.lua\n    source: \"return {{}}\"\n  - name: runtime\n    kind: function.lua\n    source: \"return {{ main = function() return nil + 1 end }}\"\n    method: main\n"
    );
    let file = registry(&dir, &entries);
    let problems = Registry::check(&file).join("\n");
    for want in [
        "entry `l:syntax`: field `source`: syntax error:",
        "syntax.lua:2:",
        "entry `l:nomethod`: field `method`: the chunk defines no function `main`",
        "entry `l:outside`: field `source`:",
        "is outside the registry folder",
        "entry `l:undeclared`: field `modules`: line 1 requires `json`",
        "entry `l:unknown_module`: field `modules`: no built-in module `sql`",
        "entry `l:missing_lib`: field `imports.helpers`: no library.lua entry `l:nowhere`",
        "entry `l:nomethod_field`: field `method`: missing",
    ] {
        assert!(problems.contains(want), "want `{want}` in:\n{problems}");
    }
    // The runtime error shows at the call, naming the entry and the line.
    let r = Registry::load_with(
        &file,
        wippy_wasm::registry::LoadOptions {
            keep_going: true,
            strict: false,
        },
    )
    .unwrap();
    let err = format!("{:#}", r.call_json("l:runtime", &[]).unwrap_err());
    assert!(
        err.contains("l:runtime") && err.contains(":1:") && err.contains("nil"),
        "{err}"
    );
    let (status, _, err) = common::cli(&["call", "-c", file.to_str().unwrap(), "l:syntax"]);
    assert_ne!(status, 0);
    assert!(err.contains("`l:syntax` did not load"), "{err}");
}
