//! The thread that owns a compiled script.
//!
//! A QuickJS runtime and its context are `!Send`, so each compiled script
//! lives on a worker thread of its own, which takes calls from a channel
//! and answers each on the caller's reply channel. The thread ends when
//! the last [`Engine`] handle is dropped.
//!
//! Every call carries a deadline: the interrupt handler stops the script
//! once it passes (QuickJS raises an exception the script cannot catch,
//! and the context stays usable), a name lookup waits only until it, and a
//! call that was queued past it is not started. The caller waits for the
//! answer until the deadline and a margin, so even a worker stuck in
//! native code cannot hold a caller longer.

use std::cell::RefCell;
use std::net::{IpAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rquickjs::context::EvalOptions;
use rquickjs::function::Opt;
use rquickjs::{CatchResultExt, CaughtError, Coerced, Context, Ctx, Function, Runtime, Value};

use super::library;
use super::Settings;
use crate::error::{Error, ErrorKind, Phase};

/// How much longer than its budget a caller waits for the worker before
/// giving up on an answer: the interrupt handler runs only between
/// JavaScript instructions, and the worker may be finishing a lookup.
const MARGIN: Duration = Duration::from_millis(500);

/// The most name lookups running at once, over every script: a lookup that
/// outlives its call's budget keeps its thread until the resolver returns,
/// and this bounds how many such threads a slow resolver can pile up.
const MAX_LOOKUPS: usize = 16;

static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// The longest error text or answer an error quotes.
const QUOTE: usize = 200;

/// Where a call's result goes.
pub(super) enum Reply {
    Blocking(mpsc::SyncSender<Result<String, Error>>),
    Async(tokio::sync::oneshot::Sender<Result<String, Error>>),
}

impl Reply {
    fn send(self, result: Result<String, Error>) {
        // A caller that gave up (timed out, dropped) no longer listens.
        let _ = match self {
            Reply::Blocking(tx) => tx.send(result).map_err(drop),
            Reply::Async(tx) => tx.send(result).map_err(drop),
        };
    }
}

struct Job {
    url: String,
    host: String,
    settings: Arc<Settings>,
    deadline: Instant,
    reply: Reply,
}

/// A handle on a compiled script's worker thread.
pub(super) struct Engine {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Engine {
    /// Starts a worker, runs the library and `script` on it (the script's
    /// top level runs within the budget too), and waits until it is ready.
    pub(super) fn compile(script: String, settings: &Arc<Settings>) -> Result<Engine, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let engine = Engine::start(script, settings, Reply::Blocking(tx))?;
        wait_blocking(&rx, settings.budget)?;
        Ok(engine)
    }

    /// As [`Engine::compile`], waiting without blocking the runtime.
    pub(super) async fn compile_async(
        script: String,
        settings: &Arc<Settings>,
    ) -> Result<Engine, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let engine = Engine::start(script, settings, Reply::Async(tx))?;
        wait_async(rx, settings.budget).await?;
        Ok(engine)
    }

    fn start(script: String, settings: &Arc<Settings>, ready: Reply) -> Result<Engine, Error> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let settings = settings.clone();
        std::thread::Builder::new()
            .name("tower-tunnel-pac".into())
            // QuickJS's own stack limit (below) is what a deep recursion
            // hits; the thread's stack is comfortably larger.
            .stack_size(4 << 20)
            .spawn(move || worker(script, settings, ready, rx))
            .map_err(|e| {
                Error::new(ErrorKind::PacScript, Some(Phase::Pac))
                    .with_detail("could not start its thread")
                    .with_source(e)
            })?;
        Ok(Engine {
            jobs: Mutex::new(jobs),
        })
    }

    fn submit(&self, job: Job) -> Result<(), Error> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.send(job).map_err(|_| {
            Error::new(ErrorKind::PacScript, Some(Phase::Pac)).with_detail("its thread has ended")
        })
    }

    /// Calls `FindProxyForURL(url, host)` and waits for the answer.
    pub(super) fn call(
        &self,
        url: &str,
        host: &str,
        settings: &Arc<Settings>,
    ) -> Result<String, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(job(url, host, settings, Reply::Blocking(tx)))?;
        wait_blocking(&rx, settings.budget)
    }

    /// As [`Engine::call`], awaiting the answer.
    pub(super) async fn call_async(
        &self,
        url: &str,
        host: &str,
        settings: &Arc<Settings>,
    ) -> Result<String, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(job(url, host, settings, Reply::Async(tx)))?;
        wait_async(rx, settings.budget).await
    }
}

fn job(url: &str, host: &str, settings: &Arc<Settings>, reply: Reply) -> Job {
    Job {
        url: url.to_owned(),
        host: host.to_owned(),
        settings: settings.clone(),
        deadline: Instant::now() + settings.budget,
        reply,
    }
}

fn wait_blocking(
    rx: &mpsc::Receiver<Result<String, Error>>,
    budget: Duration,
) -> Result<String, Error> {
    match rx.recv_timeout(budget + MARGIN) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::timeout(Phase::Pac, budget)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(thread_ended()),
    }
}

async fn wait_async(
    rx: tokio::sync::oneshot::Receiver<Result<String, Error>>,
    budget: Duration,
) -> Result<String, Error> {
    match tokio::time::timeout(budget + MARGIN, rx).await {
        Ok(Ok(result)) => result,
        Err(_) => Err(Error::timeout(Phase::Pac, budget)),
        Ok(Err(_)) => Err(thread_ended()),
    }
}

fn thread_ended() -> Error {
    Error::new(ErrorKind::PacScript, Some(Phase::Pac)).with_detail("its thread ended")
}

/// What the native functions of the library need during one call.
struct CallEnv {
    settings: Arc<Settings>,
    deadline: Instant,
    /// The lookups of this call, so a script that asks `isInNet(host, ..)`
    /// of twenty networks resolves `host` once. Keyed by name and
    /// operation, as Chromium's per-call cache: `dnsResolve(name)` and
    /// `dnsResolveEx(name)` each ask the resolver once. Bounded: only names of at most 253 bytes are
    /// kept (longer ones still reach the resolver), and past 64 names
    /// nothing more is kept.
    lookups: std::collections::HashMap<(Op, String), Vec<IpAddr>>,
}

/// Which function a lookup is for (the per-call cache keeps them apart).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    /// `dnsResolve`, and through it `isResolvable` and `isInNet`.
    Resolve,
    /// `dnsResolveEx`, and through it `isResolvableEx`.
    ResolveEx,
    /// `myIpAddress` and `myIpAddressEx`: the machine's host name.
    MyIp,
}

type Env = Rc<RefCell<Option<CallEnv>>>;

/// The deadline of the running call, shared with the interrupt handler
/// (which must be `Send`).
type Deadline = Arc<Mutex<Option<Instant>>>;

fn worker(script: String, settings: Arc<Settings>, ready: Reply, jobs: mpsc::Receiver<Job>) {
    let deadline: Deadline = Arc::new(Mutex::new(None));
    let env: Env = Rc::new(RefCell::new(None));
    let setup = || -> Result<(Runtime, Context, &'static str), Error> {
        let runtime = Runtime::new().map_err(|e| script_error(e.to_string()))?;
        runtime.set_memory_limit(settings.memory_limit);
        runtime.set_max_stack_size(1 << 20);
        let check = deadline.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let guard = check.lock().unwrap_or_else(|e| e.into_inner());
            (*guard).is_some_and(|d| Instant::now() >= d)
        })));
        let context = Context::full(&runtime).map_err(|e| script_error(e.to_string()))?;
        let until = Instant::now() + settings.budget;
        set_deadline(&deadline, Some(until));
        *env.borrow_mut() = Some(CallEnv {
            settings: settings.clone(),
            deadline: until,
            lookups: Default::default(),
        });
        let entry = context.with(|ctx| -> Result<&'static str, Error> {
            install(&ctx, &env).map_err(|e| script_error(e.to_string()))?;
            let ran: Result<(), _> = ctx
                .eval_with_options(script.as_bytes().to_vec(), sloppy())
                .catch(&ctx);
            if let Err(e) = ran {
                return Err(caught(e, until, &settings));
            }
            let globals = ctx.globals();
            for name in ["FindProxyForURLEx", "FindProxyForURL"] {
                if globals.get::<_, Function<'_>>(name).is_ok() {
                    return Ok(name);
                }
            }
            Err(script_error(
                "it defines no function FindProxyForURL".to_owned(),
            ))
        });
        set_deadline(&deadline, None);
        *env.borrow_mut() = None;
        Ok((runtime, context, entry?))
    };
    let (runtime, context, entry) = match setup() {
        Ok(ready_parts) => {
            ready.send(Ok(String::new()));
            ready_parts
        }
        Err(e) => return ready.send(Err(e)),
    };
    drop(script);
    while let Ok(job) = jobs.recv() {
        let Job {
            url,
            host,
            settings,
            deadline: until,
            reply,
        } = job;
        if Instant::now() >= until {
            // Queued behind other calls until its budget was spent.
            reply.send(Err(Error::timeout(Phase::Pac, settings.budget)));
            continue;
        }
        runtime.set_memory_limit(settings.memory_limit);
        set_deadline(&deadline, Some(until));
        *env.borrow_mut() = Some(CallEnv {
            settings: settings.clone(),
            deadline: until,
            lookups: Default::default(),
        });
        let result = context.with(|ctx| run(&ctx, entry, &url, &host, until, &settings));
        set_deadline(&deadline, None);
        *env.borrow_mut() = None;
        if matches!(&result, Err(e) if e.kind() == ErrorKind::PacOutOfMemory) {
            runtime.run_gc();
        }
        reply.send(result);
    }
}

fn set_deadline(deadline: &Deadline, to: Option<Instant>) {
    *deadline.lock().unwrap_or_else(|e| e.into_inner()) = to;
}

fn run(
    ctx: &Ctx<'_>,
    entry: &str,
    url: &str,
    host: &str,
    until: Instant,
    settings: &Settings,
) -> Result<String, Error> {
    let find: Function<'_> = ctx
        .globals()
        .get(entry)
        .map_err(|_| script_error(format!("{entry} is no longer a function")))?;
    let answer: Result<Value<'_>, _> = find.call((url, host)).catch(ctx);
    let answer = answer.map_err(|e| caught(e, until, settings))?;
    // A lookup that used up the budget returns "unresolvable"; the call
    // still fails, so no answer rests on a lookup that was cut short.
    if Instant::now() >= until {
        return Err(Error::timeout(Phase::Pac, settings.budget));
    }
    match answer.as_string() {
        Some(s) => s
            .to_string()
            .map_err(|e| answer_error(format!("its answer is not valid text ({e})"))),
        None => Err(answer_error(format!(
            "{entry} returned {} instead of a string",
            js_type(&answer)
        ))),
    }
}

/// The error for an exception out of the script.
fn caught(e: CaughtError<'_>, until: Instant, settings: &Settings) -> Error {
    if Instant::now() >= until {
        return Error::timeout(Phase::Pac, settings.budget);
    }
    let text = match &e {
        CaughtError::Exception(ex) => {
            let message = ex.message().unwrap_or_default();
            match ex.get::<_, String>("name") {
                Ok(name) if !name.is_empty() && name != "Error" => format!("{name}: {message}"),
                _ => message,
            }
        }
        CaughtError::Value(v) => v
            .as_string()
            .and_then(|s| s.to_string().ok())
            .unwrap_or_else(|| format!("a thrown {}", js_type(v))),
        CaughtError::Error(e) => e.to_string(),
    };
    let oom = matches!(&e, CaughtError::Error(rquickjs::Error::Allocation))
        || text.contains("out of memory");
    if oom {
        return out_of_memory(settings);
    }
    // QuickJS throws a bare `null` when it cannot allocate even its "out of
    // memory" error (JS_ThrowError2); by the time the call returns, the
    // heap is freed, so nothing else tells. A script's own `throw null`
    // reads the same, and says so.
    if matches!(&e, CaughtError::Value(v) if v.is_null()) {
        return out_of_memory(settings).with_detail(format!(
            "its memory limit is {} bytes (it threw `null`: QuickJS's sign that it could not \
             allocate even an error, unless the script threw `null` itself)",
            settings.memory_limit
        ));
    }
    if text.contains("stack overflow") {
        return script_error("stack overflow".to_owned());
    }
    script_error(quote(&text))
}

fn out_of_memory(settings: &Settings) -> Error {
    Error::new(ErrorKind::PacOutOfMemory, Some(Phase::Pac)).with_detail(format!(
        "its memory limit is {} bytes",
        settings.memory_limit
    ))
}

/// A value's type as JavaScript's `typeof` names it.
fn js_type(v: &Value<'_>) -> &'static str {
    if v.is_number() {
        "number"
    } else if v.is_bool() {
        "boolean"
    } else if v.is_null() {
        "null"
    } else if v.is_undefined() {
        "undefined"
    } else if v.is_function() {
        "function"
    } else if v.is_object() {
        "object"
    } else {
        "a value of another type"
    }
}

pub(super) fn script_error(detail: String) -> Error {
    Error::new(ErrorKind::PacScript, Some(Phase::Pac)).with_detail(detail)
}

pub(super) fn answer_error(detail: String) -> Error {
    Error::new(ErrorKind::PacAnswer, Some(Phase::Pac)).with_detail(detail)
}

/// `text`, cut to a length an error message can carry.
pub(super) fn quote(text: &str) -> String {
    if text.len() <= QUOTE {
        return text.to_owned();
    }
    let mut end = QUOTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Defines the library in `ctx`: the native functions, then the
/// JavaScript ones.
fn install<'js>(ctx: &Ctx<'js>, env: &Env) -> rquickjs::Result<()> {
    let g = ctx.globals();
    let e = env.clone();
    g.set(
        "dnsResolve",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, host: Opt<Value<'js>>| {
            // Not a string, or a name IDNA refuses: null, and no lookup.
            let Some(host) = resolver_name(host) else {
                return Ok(Value::new_null(ctx));
            };
            let ips = lookup(&e, Op::Resolve, &host);
            let ip = ips.iter().find(|ip| ip.is_ipv4());
            nullable(&ctx, ip.map(ToString::to_string))
        })?,
    )?;
    let e = env.clone();
    g.set(
        "dnsResolveEx",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, host: Opt<Value<'js>>| {
            // Not a string: undefined, as Chromium's binding answers.
            let Some(host) = resolver_name(host) else {
                return Ok(Value::new_undefined(ctx));
            };
            let ips = library::join(&lookup(&e, Op::ResolveEx, &host));
            rquickjs::String::from_str(ctx, &ips).map(|s| s.into_value())
        })?,
    )?;
    let e = env.clone();
    g.set(
        "myIpAddress",
        Function::new(ctx.clone(), move || my_ip(&e).to_string())?,
    )?;
    let e = env.clone();
    g.set(
        "myIpAddressEx",
        Function::new(ctx.clone(), move || my_ip_ex(&e))?,
    )?;
    g.set(
        "isPlainHostName",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, host: Opt<Value<'js>>| match string_arg(host) {
                Some(host) => Ok(library::is_plain_host_name(&host)),
                None => Err(rquickjs::Exception::throw_type(
                    &ctx,
                    "Requires 1 string parameter",
                )),
            },
        )?,
    )?;
    g.set(
        "isInNetEx",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, ip: Opt<Value<'js>>, prefix: Opt<Value<'js>>| {
                let (Some(ip), Some(prefix)) = (string_arg(ip), string_arg(prefix)) else {
                    return Value::new_null(ctx);
                };
                let inside =
                    ip.is_ascii() && prefix.is_ascii() && library::is_in_net_ex(&ip, &prefix);
                Value::new_bool(ctx, inside)
            },
        )?,
    )?;
    g.set(
        "sortIpAddressList",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, list: Opt<Value<'js>>| match string_arg(list) {
                Some(list) if list.is_ascii() => match library::sort_ip_address_list(&list) {
                    Some(sorted) => {
                        rquickjs::String::from_str(ctx, &sorted).map(|s| s.into_value())
                    }
                    None => Ok(Value::new_bool(ctx, false)),
                },
                _ => Ok(Value::new_null(ctx)),
            },
        )?,
    )?;
    g.set("getClientVersion", Function::new(ctx.clone(), || "1.0")?)?;
    g.set(
        "alert",
        Function::new(ctx.clone(), |message: Opt<Coerced<String>>| {
            tracing::info!(target: "tower_tunnel::pac", "alert: {}", quote(&arg(message)));
        })?,
    )?;
    let e = env.clone();
    g.set("__pacNow", Function::new(ctx.clone(), move || now_ms(&e))?)?;
    ctx.eval_with_options::<(), _>(library::JS_LIBRARY, sloppy())
}

/// Scripts run as browsers run them: global code in sloppy mode, where
/// `x = 3` makes a global (rquickjs evaluates in strict mode by default).
fn sloppy() -> EvalOptions {
    let mut options = EvalOptions::default();
    options.strict = false;
    options
}

fn arg(value: Opt<Coerced<String>>) -> String {
    value.0.map(|c| c.0).unwrap_or_default()
}

/// The argument's text when it is a string (Chromium's bindings take
/// strings only, and answer otherwise without converting).
fn string_arg(value: Opt<Value<'_>>) -> Option<String> {
    value.0?.as_string()?.to_string().ok()
}

/// The name `dnsResolve` and `dnsResolveEx` give the resolver: a string
/// argument as it is, or as punycode when it is not ASCII.
fn resolver_name(value: Opt<Value<'_>>) -> Option<String> {
    library::host_for_resolver(&string_arg(value)?)
}

fn nullable<'js>(ctx: &Ctx<'js>, text: Option<String>) -> rquickjs::Result<Value<'js>> {
    match text {
        Some(s) => rquickjs::String::from_str(ctx.clone(), &s).map(|s| s.into_value()),
        None => Ok(Value::new_null(ctx.clone())),
    }
}

fn now_ms(env: &Env) -> f64 {
    let now = env
        .borrow()
        .as_ref()
        .and_then(|e| e.settings.clock.as_ref().map(|clock| clock()))
        .unwrap_or_else(SystemTime::now);
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as f64,
        Err(before) => -(before.duration().as_millis() as f64),
    }
}

/// The addresses of `host`, through the resolver, waiting no longer than
/// the call's deadline; empty when it cannot be resolved in time.
fn lookup(env: &Env, op: Op, host: &str) -> Vec<IpAddr> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return vec![ip];
    }
    let Some((settings, deadline, known)) = env.borrow().as_ref().map(|e| {
        let known = e.lookups.get(&(op, host.to_owned())).cloned();
        (e.settings.clone(), e.deadline, known)
    }) else {
        return Vec::new();
    };
    if let Some(ips) = known {
        return ips;
    }
    let ips = resolve(host, &settings, deadline);
    if let Some(e) = env.borrow_mut().as_mut() {
        if e.lookups.len() < 64 && host.len() <= 253 {
            e.lookups.insert((op, host.to_owned()), ips.clone());
        }
    }
    ips
}

/// One lookup through the resolver, on a helper thread, waited for until
/// `deadline`.
fn resolve(host: &str, settings: &Arc<Settings>, deadline: Instant) -> Vec<IpAddr> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Vec::new();
    }
    if LOOKUPS.fetch_add(1, Ordering::AcqRel) >= MAX_LOOKUPS {
        LOOKUPS.fetch_sub(1, Ordering::AcqRel);
        tracing::debug!(target: "tower_tunnel::pac", host, "too many lookups running; taken as unresolvable");
        return Vec::new();
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let name = host.to_owned();
    let resolver = settings.resolver.clone();
    let spawned = std::thread::Builder::new()
        .name("tower-tunnel-pac-dns".into())
        .spawn(move || {
            let result = resolver(&name);
            LOOKUPS.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(result);
        });
    if spawned.is_err() {
        LOOKUPS.fetch_sub(1, Ordering::AcqRel);
        return Vec::new();
    }
    match rx.recv_timeout(remaining) {
        Ok(Ok(ips)) => ips,
        Ok(Err(_)) | Err(_) => Vec::new(),
    }
}

/// `myIpAddress()`: the address set with `with_my_ip_address`, else the
/// first non-loopback address of the machine's host name (IPv4 first),
/// else `127.0.0.1` (Chromium's fallback).
fn my_ip(env: &Env) -> IpAddr {
    let set = env.borrow().as_ref().and_then(|e| e.settings.my_ip);
    set.or_else(|| library::pick_my_ip(&lookup(env, Op::MyIp, &library::host_name())))
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// `myIpAddressEx()`: the address set with `with_my_ip_address`, else
/// every non-loopback address of the host name, else `127.0.0.1`.
fn my_ip_ex(env: &Env) -> String {
    if let Some(ip) = env.borrow().as_ref().and_then(|e| e.settings.my_ip) {
        return ip.to_string();
    }
    let ips: Vec<IpAddr> = lookup(env, Op::MyIp, &library::host_name())
        .into_iter()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    if ips.is_empty() {
        "127.0.0.1".to_owned()
    } else {
        library::join(&ips)
    }
}

/// The system resolver: `getaddrinfo` through [`ToSocketAddrs`].
pub(super) fn system_resolver(host: &str) -> std::io::Result<Vec<IpAddr>> {
    Ok((host, 0u16).to_socket_addrs()?.map(|a| a.ip()).collect())
}
