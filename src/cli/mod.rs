//! The `wippy-wasm` command line: argument parsing and the commands, over
//! the library. `src/main.rs` only calls [`main`]; nothing else in the crate
//! uses this module.

pub mod inspect;
pub mod run;
pub mod wast;
pub mod wave;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "wippy-wasm",
    version,
    about = "WebAssembly Component Model runtime on the wasmi interpreter"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Component Model `.wast` scripts; ends with `N passed, M failed`.
    Wast {
        /// Script files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Also list skipped directives.
        #[arg(long)]
        verbose: bool,
    },
    /// Run a `wasi:cli/command` component, or a wasm32-wasip1 module; with
    /// `-c`, a registry command (`run -c PATH NAME [ARGS...]`, or
    /// `run -c PATH list`).
    #[command(trailing_var_arg = true)]
    Run {
        /// Run the registry command named FILE instead of a file.
        #[arg(short = 'c', long = "config")]
        config: Option<std::path::PathBuf>,
        #[command(flatten)]
        guest: GuestFlags,
        /// The guest's argv[0] (default: the file name).
        #[arg(long)]
        argv0: Option<String>,
        /// Call this export instead of `wasi:cli/run`, e.g. 'greet("you")'
        /// (arguments in WAVE), and print its result.
        #[arg(long, value_name = "CALL")]
        invoke: Option<String>,
        #[command(flatten)]
        net: NetFlags,
        /// The program (with `-c`: the command name, or `list`).
        file: std::path::PathBuf,
        /// Its arguments.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start a registry's `process.service` entries with `auto_start` and
    /// keep them running (restarting failed ones) until SIGINT or SIGTERM.
    Up {
        #[arg(short = 'c', long = "config")]
        config: std::path::PathBuf,
        /// Any problem in the registry is fatal.
        #[arg(long)]
        strict: bool,
    },
    /// Serve a component exporting `wasi:http/incoming-handler` (the
    /// `wasi:http/proxy` world) over HTTP, like `wasmtime serve`; or, with
    /// `-c`, a registry's `http.endpoint` entries.
    Serve {
        /// Where to listen (port 0 picks a free port).
        #[arg(long, default_value = "0.0.0.0:8080", value_name = "HOST:PORT")]
        addr: String,
        /// Serve a registry's endpoints instead of one component.
        #[arg(short = 'c', long = "config", conflicts_with = "component")]
        config: Option<std::path::PathBuf>,
        /// With `-c`: any problem in the registry (a broken entry, an
        /// unknown field) stops the server from starting.
        #[arg(long, requires = "config")]
        strict: bool,
        #[command(flatten)]
        instances: InstanceFlags,
        #[command(flatten)]
        guest: GuestFlags,
        #[command(flatten)]
        net: NetFlags,
        /// The component.
        #[arg(required_unless_present = "config")]
        component: Option<std::path::PathBuf>,
    },
    /// Call a registry function with JSON arguments and print the JSON result.
    Call {
        /// A definition file, or a folder of `_index.yaml` files.
        #[arg(short = 'c', long = "config")]
        config: std::path::PathBuf,
        /// The function, `namespace:name`.
        id: String,
        /// Positional arguments, one JSON value each.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
        /// Any problem in the registry (a broken entry, an unknown field)
        /// is fatal; by default broken entries are reported and the rest run.
        #[arg(long)]
        strict: bool,
    },
    /// Check every registry entry and list every problem found.
    Check {
        #[arg(short = 'c', long = "config")]
        config: std::path::PathBuf,
    },
    /// Print a component's imports and exports in WIT-like form.
    Inspect { file: std::path::PathBuf },
}

/// Parses the command line and runs the command; the process exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line, as for every other error; `--help` has the rest.
            let msg = e.to_string();
            eprintln!("{}", msg.lines().next().unwrap_or("error: invalid arguments"));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Command::Wast { files, verbose } => wast(&files, verbose),
        Command::Inspect { file } => inspect(&file),
        Command::Call {
            config,
            id,
            args,
            strict,
        } => call(&config, &id, &args, strict),
        Command::Check { config } => check(&config),
        Command::Run {
            config: Some(config),
            file,
            args,
            ..
        } => run_command(&config, &file.to_string_lossy(), &args),
        Command::Run {
            config: None,
            guest,
            argv0,
            invoke,
            net,
            file,
            args,
        } => net
            .policy()
            .and_then(|network| run(&guest, argv0, invoke, network, file, args)),
        Command::Up { config, strict } => up(&config, strict),
        Command::Serve {
            addr,
            config,
            strict,
            instances,
            guest,
            net,
            component,
        } => serve(&addr, config, strict, &instances, &guest, &net, component),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn wast(files: &[std::path::PathBuf], verbose: bool) -> anyhow::Result<ExitCode> {
    let mut total = wast::Summary::default();
    for file in files {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                println!("FAIL {name}: cannot read: {e}");
                total.failed += 1;
                continue;
            }
        };
        let mut report = |line: String| {
            if verbose || line.starts_with("FAIL") {
                println!("{line}");
            }
        };
        match wast::run_script(&name, &text, &mut report) {
            Ok(s) => {
                println!(
                    "{name}: {} passed, {} failed, {} skipped",
                    s.passed, s.failed, s.skipped
                );
                total += s;
            }
            Err(e) => {
                println!("FAIL {name}: {e:#}");
                total.failed += 1;
            }
        }
    }
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    Ok(if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn inspect(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let engine = crate::Engine::default();
    let component = crate::Component::from_file(&engine, file)?;
    print!("{}", inspect::describe(&component));
    Ok(ExitCode::SUCCESS)
}

fn run(
    guest: &GuestFlags,
    argv0: Option<String>,
    invoke: Option<String>,
    network: crate::wasi::sockets::NetworkPolicy,
    file: std::path::PathBuf,
    args: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let opts = run::RunOptions {
        args,
        argv0,
        invoke,
        network,
        env: guest.env(),
        dirs: guest.dirs()?,
    };
    let ctx = crate::wasi::WasiCtx::new().inherit_stdio();
    let status = run::run_file(&file, &opts, ctx)?;
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

fn serve(
    addr: &str,
    config: Option<std::path::PathBuf>,
    strict: bool,
    instances: &InstanceFlags,
    guest: &GuestFlags,
    net: &NetFlags,
    component: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    use std::net::ToSocketAddrs;
    let addr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| anyhow::anyhow!("--addr {addr}: expected HOST:PORT"))?;
    if let Some(config) = config {
        let registry = open_registry(&config, strict)?;
        let handler = crate::registry::http::EndpointHandler::new(&registry)?;
        let services = registry.start_services();
        crate::serve::serve(std::sync::Arc::new(handler), addr, instances.timeouts())?;
        crate::dispatch::block_on(services.stop());
        return Ok(ExitCode::SUCCESS);
    }
    let mut network = net.policy()?;
    // As `wasmtime serve`: a proxy may send requests of its own.
    network.http = true;
    let config = crate::serve::InstanceConfig {
        env: guest.env(),
        dirs: guest.dirs()?,
        network,
        max_instances: instances.max_instances,
        max_execution: Some(instances.max_execution_ms)
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis),
        fresh_instances: instances.fresh_instances,
    };
    let component = component.ok_or_else(|| anyhow::anyhow!("serve: give a component, or -c CONFIG"))?;
    crate::serve::serve_component(&component, addr, config, instances.timeouts())?;
    Ok(ExitCode::SUCCESS)
}

/// Loads a registry for `call` and `serve -c`: broken entries and warnings
/// are reported on stderr, once each, and the rest run; with `strict`
/// any of them is fatal.
fn open_registry(config: &std::path::Path, strict: bool) -> anyhow::Result<crate::registry::Registry> {
    let options = crate::registry::LoadOptions {
        keep_going: !strict,
        strict,
    };
    let registry = crate::registry::Registry::load_with(config, options)?;
    for w in registry.warnings() {
        eprintln!("warning: {w}");
    }
    for p in registry.problems() {
        eprintln!("error: {p}");
    }
    Ok(registry)
}

/// `run -c PATH NAME ARGS...`: a registry command as a process, its result
/// printed (a string as it is, anything else as JSON; `ok(v)` as `v`, `err(e)`
/// on stderr with status 1); `list` lists the commands.
fn run_command(config: &std::path::Path, name: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    let registry = open_registry(config, false)?;
    if name == "list" && registry.command("list").is_err() {
        let commands = registry.commands();
        if commands.is_empty() {
            println!("no commands (give a process.wasm entry `meta.command: {{name, short}}`)");
        }
        let width = commands.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in commands {
            println!("  {:<width$}  {}", c.name, c.short);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let command = registry.command(name)?;
    let (json_args, options) = registry.command_args(&command.id, args)?;
    let ty = registry.func_type(&command.id)?;
    let process = registry.spawn_with(&command.id, &json_args, options)?;
    let exit = crate::dispatch::block_on(process.wait());
    use crate::registry::process::Exit;
    let print = |v: &serde_json::Value| match v {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => println!("{s}"),
        other => println!("{other}"),
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(match exit {
        Exit::Returned(v) => match (&ty.result, v.as_object().and_then(|o| o.iter().next())) {
            (Some(crate::values::Type::Result { .. }), Some((k, inner))) if k == "err" => {
                eprintln!("error: {}", text(inner));
                ExitCode::FAILURE
            }
            (Some(crate::values::Type::Result { .. }), Some((_, inner))) => {
                print(inner);
                ExitCode::SUCCESS
            }
            _ => {
                print(&v);
                ExitCode::SUCCESS
            }
        },
        Exit::Exited(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Exit::Failed(e) => {
            eprintln!("error: {e}");
            ExitCode::from(134)
        }
        Exit::Cancelled => ExitCode::from(130),
    })
}

/// `up -c PATH`: the registry's services until SIGINT/SIGTERM, or until
/// every one has ended (status 1 if one gave up).
fn up(config: &std::path::Path, strict: bool) -> anyhow::Result<ExitCode> {
    let registry = open_registry(config, strict)?;
    let stop = crate::serve::shutdown_signal()?;
    let services = registry.start_services();
    if services.is_empty() {
        anyhow::bail!("the registry has no process.service entries with `lifecycle.auto_start: true`");
    }
    eprintln!("started {} service(s)", services.len());
    let signalled = crate::dispatch::block_on(futures_lite::future::or(
        async {
            stop.await;
            true
        },
        async {
            services.wait().await;
            false
        },
    ));
    if signalled {
        eprintln!("stopping");
        crate::dispatch::block_on(services.stop());
        eprintln!("stopped");
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if services.any_gave_up() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn call(config: &std::path::Path, id: &str, args: &[String], strict: bool) -> anyhow::Result<ExitCode> {
    let registry = open_registry(config, strict)?;
    let args = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_str(a).map_err(|e| anyhow::anyhow!("argument {}: invalid JSON `{a}`: {e}", i + 1))
        })
        .collect::<anyhow::Result<Vec<serde_json::Value>>>()?;
    println!("{}", registry.call_json_text(id, &args)?);
    Ok(ExitCode::SUCCESS)
}

fn check(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let problems = crate::registry::Registry::check(config);
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!("ok: no problems found");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s)", problems.len());
        Ok(ExitCode::FAILURE)
    }
}

/// How `serve` runs instances.
#[derive(clap::Args)]
struct InstanceFlags {
    /// At most N instances of the component at once.
    #[arg(long, value_name = "N")]
    max_instances: Option<usize>,
    /// Stop a request's guest call (streaming its response included) after
    /// MS milliseconds; 0: no limit. With `-c`, each function's own
    /// `max_execution_ms` applies instead.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    max_execution_ms: u64,
    /// A fresh instance for every request (no state kept between
    /// requests), as `wasmtime serve` does; default: pooled instances.
    #[arg(long)]
    fresh_instances: bool,
    /// Close a connection whose request head has not arrived MS
    /// milliseconds after it went quiet (nginx's `client_header_timeout`).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Fail a request body whose next bytes take longer than MS
    /// milliseconds to arrive (nginx's `client_body_timeout`): the guest
    /// reading it gets an error, the connection is closed.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    body_timeout_ms: u64,
}

impl InstanceFlags {
    fn timeouts(&self) -> crate::serve::Timeouts {
        let ms = |ms: u64| std::time::Duration::from_millis(ms.max(1));
        crate::serve::Timeouts {
            header: ms(self.header_timeout_ms),
            body: ms(self.body_timeout_ms),
        }
    }
}

/// What the guest sees of the host: directories and environment.
#[derive(clap::Args)]
struct GuestFlags {
    /// Give the guest a host directory, read-write: HOST[::GUEST].
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Give the guest a host directory, read-only: HOST[::GUEST].
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    dirs_ro: Vec<String>,
    /// Set NAME=VALUE, or pass NAME through from the host.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Pass the whole host environment through.
    #[arg(long)]
    inherit_env: bool,
}

impl GuestFlags {
    fn env(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if self.inherit_env {
            out.extend(std::env::vars());
        }
        for e in &self.env {
            match e.split_once('=') {
                Some((k, v)) => out.push((k.to_string(), v.to_string())),
                None => {
                    if let Ok(v) = std::env::var(e) {
                        out.push((e.clone(), v));
                    }
                }
            }
        }
        out
    }

    fn dirs(&self) -> anyhow::Result<Vec<crate::wasi::DirMount>> {
        use crate::wasi::DirMount;
        let rw = self.dirs.iter().map(|d| DirMount::parse(d, false));
        let ro = self.dirs_ro.iter().map(|d| DirMount::parse(d, true));
        rw.chain(ro).collect()
    }
}

/// `run`'s networking options; without any, the guest has no network.
#[derive(clap::Args, Debug)]
struct NetFlags {
    /// Let the guest use the network (sockets and name lookup), as
    /// wasmtime's `-S inherit-network`.
    #[arg(long)]
    inherit_network: bool,
    /// Let the guest send HTTP requests (`wasi:http/outgoing-handler`), to
    /// addresses the lists below permit.
    #[arg(long)]
    allow_http: bool,
    /// Let the guest resolve names (`wasi:sockets/ip-name-lookup`).
    #[arg(long)]
    allow_ip_name_lookup: bool,
    /// Grant TCP/UDP to these addresses only, ADDR[/LEN] (repeatable).
    #[arg(long = "net-allow", value_name = "ADDR[/LEN]")]
    net_allow: Vec<String>,
    /// Never these addresses, ADDR[/LEN] (repeatable).
    #[arg(long = "net-deny", value_name = "ADDR[/LEN]")]
    net_deny: Vec<String>,
    /// Refuse loopback addresses.
    #[arg(long)]
    deny_loopback: bool,
    /// Refuse private and link-local addresses.
    #[arg(long)]
    deny_private: bool,
    /// At most N sockets open at once (beyond: `new-socket-limit`).
    #[arg(long, value_name = "N")]
    max_sockets: Option<u64>,
    /// A connect, or a blocking socket read or write, that makes no
    /// progress for MS milliseconds fails.
    #[arg(long, value_name = "MS")]
    socket_timeout_ms: Option<u64>,
}

impl NetFlags {
    fn policy(&self) -> anyhow::Result<crate::wasi::sockets::NetworkPolicy> {
        use crate::wasi::sockets::{parse_range, NetworkPolicy};
        let mut p = if self.inherit_network {
            NetworkPolicy::inherit()
        } else {
            NetworkPolicy::default()
        };
        p.name_lookup |= self.allow_ip_name_lookup;
        p.http |= self.allow_http;
        p.allow = self
            .net_allow
            .iter()
            .map(|s| parse_range(s))
            .collect::<anyhow::Result<_>>()?;
        p.deny = self
            .net_deny
            .iter()
            .map(|s| parse_range(s))
            .collect::<anyhow::Result<_>>()?;
        // An allow list is a grant: networking limited to those ranges.
        p.enabled |= !p.allow.is_empty();
        p.deny_loopback = self.deny_loopback;
        p.deny_private = self.deny_private;
        p.max_sockets = self.max_sockets;
        p.timeout = self.socket_timeout_ms.map(std::time::Duration::from_millis);
        Ok(p)
    }
}
