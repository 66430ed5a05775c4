//! Embedding wippy-wasm: load a component, give it a host import, call an
//! export with typed arguments.
//!
//! ```sh
//! cargo run --release --example embed [NAME]
//! ```

use anyhow::Result;
use wippy_wasm::{Component, Engine, Linker, Store};

fn main() -> Result<()> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "component model".to_string());
    let engine = Engine::default();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/greet.wat");
    let component = Component::from_file(&engine, path)?;

    let mut linker = Linker::<Vec<String>>::default();
    linker.root().func_wrap("log", |mut cx, (msg,): (String,)| {
        cx.data_mut().push(msg);
        Ok(())
    });

    let mut store = Store::new(&engine, Vec::new());
    let instance = linker.instantiate(&mut store, &component)?;
    let greet = instance.get_typed_func::<_, (String,), String>(&store, "greet")?;
    let answer = greet.call(&mut store, (name,))?;
    println!("{answer}");
    for line in store.data() {
        println!("guest logged: {line}");
    }
    Ok(())
}
