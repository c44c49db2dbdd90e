//! esf-load: replays the christmas mix (../shared/bench/christmas.lua) at
//! fixed offered rates, open loop, and prints one `ESF_RESULT` line per step.
//!
//! Requests are scheduled ahead of time, Poisson arrivals at the step's rate
//! (or evenly spaced with --arrivals uniform), whatever the server does.
//! WORKERS simulated browsers, each one shopper on one keep-alive connection,
//! take the scheduled requests in order: an idle browser waits for the next
//! request's time and sends it. A request's latency is measured from its
//! scheduled time, not from when it was sent: when every browser is busy, a
//! request waits for one, and that wait counts (no coordinated omission; the
//! service time from the actual send is printed beside it as `svc_*`). At the
//! end of a step no more of its requests are sent (those scheduled but not
//! sent are counted as `unsent`) and those in flight are waited for; the
//! browsers, their shoppers and connections go on into the next step.
//!
//! Errors are counted as ../shared/bench counts them: responses with a
//! status of 400 or more, socket errors (connect, read, write) and timeouts. A step is held
//! when p99 < --p99-ms, there are no errors and achieved >= 99% of offered.

mod http;
mod rng;
mod shopper;

use http::{Base, Conn, Failure};
use rng::{Rng, Zipf};
use shopper::{Kind, Mix, Shopper};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: esf-load --rates R1,R2,... [options] BASE_URL

Replays the christmas mix at each offered rate in turn (requests/s, open loop)
against BASE_URL, the store prefix (e.g. http://127.0.0.1:18080/store), and
prints one ESF_RESULT line per step.

options:
  --rates LIST        offered loads, requests/s, comma-separated (required)
  --duration S        seconds per step (default 10)
  --warmup S          an untimed first step at the first rate (default 0: none)
  --workers W         simulated browsers = connections (default 128)
  --arrivals KIND     poisson (default) or uniform
  --timeout S         per-request timeout in seconds (default 10)
  --p99-ms MS         a step is held when p99 < MS, no errors, achieved >= 99%
                      of offered (default 50)
  --stop-after N      stop after N overloaded steps in a row (default: never):
                      achieved < 95% of offered, or p99 > 20 x --p99-ms
  --stack-pids LIST   pids of the servers under test (their process trees are
                      followed): each step then splits the machine's CPU use
                      into the stack's, the generator's and everything else's
  --max-others-pct P  with --stack-pids: a step during which everything else
                      used more than P% of the machine is disturbed (printed
                      with disturbed=1) and run again, up to --retries times
  --retries N         (default 2)

environment (as ../shared/bench/bench.sh):
  ESF_SCALE           tiny|small|default|large: the catalog sizes (default: default)
  ESF_PRODUCTS, ESF_CATEGORIES   explicit catalog sizes
  ESF_QUERIES         queries.tsv (required)
  ESF_SEED            random streams (default 1)
  ESF_SESSION_LEN     mean requests per shopper session (default 20)";

struct Args {
    base: Base,
    rates: Vec<f64>,
    duration: f64,
    warmup: f64,
    workers: usize,
    poisson: bool,
    timeout: Duration,
    p99_ms: f64,
    stop_after: usize,
    stack_pids: Vec<u32>,
    max_others: Option<f64>,
    retries: usize,
}

fn fail(msg: &str) -> ! {
    eprintln!("esf-load: {msg}\n\n{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = std::env::args().skip(1);
    let mut url = None;
    let mut args = Args {
        base: Base::parse("http://localhost/").unwrap(),
        rates: Vec::new(),
        duration: 10.0,
        warmup: 0.0,
        workers: 128,
        poisson: true,
        timeout: Duration::from_secs(10),
        p99_ms: 50.0,
        stop_after: usize::MAX,
        stack_pids: Vec::new(),
        max_others: None,
        retries: 2,
    };
    while let Some(arg) = a.next() {
        let mut val = |name: &str| a.next().unwrap_or_else(|| fail(&format!("{name} needs a value")));
        let num = |s: &str, name: &str| -> f64 {
            s.parse::<f64>().ok().filter(|v| *v >= 0.0).unwrap_or_else(|| fail(&format!("bad {name}: {s}")))
        };
        match arg.as_str() {
            "--rates" | "--rate" => {
                args.rates = val(&arg).split([',', ' ']).filter(|s| !s.is_empty()).map(|s| num(s, "rate")).collect()
            }
            "--duration" => args.duration = num(&val(&arg), &arg),
            "--warmup" => args.warmup = num(&val(&arg), &arg),
            "--workers" => args.workers = num(&val(&arg), &arg) as usize,
            "--timeout" => args.timeout = Duration::from_secs_f64(num(&val(&arg), &arg)),
            "--p99-ms" => args.p99_ms = num(&val(&arg), &arg),
            "--stop-after" => args.stop_after = num(&val(&arg), &arg) as usize,
            "--stack-pids" => {
                args.stack_pids = val(&arg)
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap_or_else(|_| fail(&format!("bad pid {s}"))))
                    .collect()
            }
            "--max-others-pct" => args.max_others = Some(num(&val(&arg), &arg)),
            "--retries" => args.retries = num(&val(&arg), &arg) as usize,
            "--arrivals" => {
                args.poisson = match val(&arg).as_str() {
                    "poisson" => true,
                    "uniform" => false,
                    other => fail(&format!("unknown arrivals {other}")),
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            s if s.starts_with('-') => fail(&format!("unknown option {s}")),
            s if url.is_none() => url = Some(s.to_string()),
            s => fail(&format!("unexpected argument {s}")),
        }
    }
    let url = url.unwrap_or_else(|| fail("no BASE_URL"));
    args.base = Base::parse(&url).unwrap_or_else(|e| fail(&e));
    if args.rates.is_empty() || args.rates.iter().any(|r| *r <= 0.0) {
        fail("--rates needs one or more positive rates");
    }
    if args.duration <= 0.0 || args.timeout.is_zero() {
        fail("--duration and --timeout must be positive");
    }
    args.workers = args.workers.max(1);
    args.stop_after = args.stop_after.max(1);
    args
}

fn env_num(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn load_mix(base: Base) -> Mix {
    let (n, c) = match std::env::var("ESF_SCALE").as_deref().unwrap_or("default") {
        "tiny" => (200, 12),
        "small" => (10_000, 100),
        "default" => (100_000, 500),
        "large" => (1_000_000, 2000),
        other => fail(&format!("unknown ESF_SCALE {other}")),
    };
    let n = env_num("ESF_PRODUCTS").map_or(n, |v| v as u64);
    let c = env_num("ESF_CATEGORIES").map_or(c, |v| v as u64);
    let qpath = std::env::var("ESF_QUERIES").unwrap_or_else(|_| fail("set ESF_QUERIES to the path of queries.tsv"));
    let text = std::fs::read_to_string(&qpath).unwrap_or_else(|e| fail(&format!("{qpath}: {e}")));
    // The first line is the header, as common.lua reads it.
    let queries: Vec<String> = text.lines().skip(1).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if queries.is_empty() {
        fail(&format!("no queries in {qpath}"));
    }
    Mix {
        base,
        products: Zipf::new(n, 1.0),
        categories: Zipf::new(c, 1.0),
        queries,
        session_len: env_num("ESF_SESSION_LEN").unwrap_or(20.0),
    }
}

/// One step's arrival schedule: times (seconds from the start) handed out in order.
struct Schedule {
    start: Instant,
    end: f64,
    state: Mutex<(f64, Rng, u64)>, // next arrival, arrivals' random stream, handed out
    rate: f64,
    poisson: bool,
}

impl Schedule {
    fn new(rate: f64, duration: f64, poisson: bool, seed: u64) -> Schedule {
        // Start a little ahead so every browser is ready at the first arrival.
        let mut s = Schedule {
            start: Instant::now() + Duration::from_millis(100),
            end: duration,
            state: Mutex::new((0.0, Rng::new(seed ^ 0xA5A5_5A5A ^ rate.to_bits()), 0)),
            rate,
            poisson,
        };
        let st = s.state.get_mut().unwrap();
        let (next, rng) = (&mut st.0, &mut st.1);
        *next = if poisson { rng.exp(1.0 / rate) } else { 0.5 / rate };
        s
    }

    fn advance(&self, next: &mut f64, rng: &mut Rng) {
        *next += if self.poisson { rng.exp(1.0 / self.rate) } else { 1.0 / self.rate };
    }

    /// The next request's scheduled time, or None once the step is over.
    fn take(&self) -> Option<Instant> {
        let mut g = self.state.lock().unwrap();
        let (next, rng, taken) = &mut *g;
        if *next >= self.end || self.start.elapsed().as_secs_f64() >= self.end {
            return None;
        }
        let t = self.start + Duration::from_secs_f64(*next);
        self.advance(next, rng);
        *taken += 1;
        Some(t)
    }

    /// (scheduled in the step, handed out): the rest were never sent.
    fn totals(&self) -> (u64, u64) {
        let mut g = self.state.lock().unwrap();
        let (next, rng, taken) = &mut *g;
        let mut n = *taken;
        while *next < self.end {
            self.advance(next, rng);
            n += 1;
        }
        (n, *taken)
    }
}

#[derive(Default)]
struct Tally {
    lat: Vec<(Kind, u32, u32)>, // kind, µs from the scheduled time, µs from the send
    counts: BTreeMap<String, u64>,
    non2xx3xx: u64,
    socket_errors: u64,
    timeouts: u64,
    responses: u64,
    bytes: u64,
    connects: u64,
}

impl Tally {
    fn bump(&mut self, k: &str) {
        *self.counts.entry(k.to_string()).or_default() += 1;
    }

    fn merge(&mut self, t: Tally) {
        self.lat.extend(t.lat);
        for (k, v) in t.counts {
            *self.counts.entry(k).or_default() += v;
        }
        self.non2xx3xx += t.non2xx3xx;
        self.socket_errors += t.socket_errors;
        self.timeouts += t.timeouts;
        self.responses += t.responses;
        self.bytes += t.bytes;
        self.connects += t.connects;
    }
}

/// What the browsers share with the conductor.
struct Shared {
    mix: Mix,
    timeout: Duration,
    /// The step to run; None: stop.
    step: Mutex<Option<Arc<Schedule>>>,
    go: Barrier,
    busy: AtomicUsize,
    max_busy: AtomicUsize,
}

/// One simulated browser: one shopper after another on one connection, across the steps.
fn browser(id: usize, sh: Arc<Shared>, done: mpsc::Sender<Tally>) {
    let seed = env_num("ESF_SEED").unwrap_or(1.0) as u64;
    let mut rng = Rng::new(seed.wrapping_mul(100_003).wrapping_add(id as u64 * 7919));
    let mix = &sh.mix;
    let addr = mix.base.addr().unwrap_or_else(|e| fail(&format!("{}: {e}", mix.base.host)));
    let mut conn = Conn::new(addr);
    let mut shopper = Shopper::new();
    loop {
        sh.go.wait();
        let Some(sched) = sh.step.lock().unwrap().clone() else { return };
        let mut t = Tally::default();
        let connects_before = conn.connects;
        while let Some(at) = sched.take() {
            let now = Instant::now();
            if at > now {
                thread::sleep(at - now);
            }
            let n = sh.busy.fetch_add(1, Ordering::Relaxed) + 1;
            sh.max_busy.fetch_max(n, Ordering::Relaxed);
            let (kind, req) = shopper.request(mix, &mut rng);
            t.bump(kind.name());
            let sent = Instant::now();
            let result = conn.exchange(&req, sent + sh.timeout);
            let done = Instant::now();
            sh.busy.fetch_sub(1, Ordering::Relaxed);
            match result {
                Ok(resp) => {
                    t.responses += 1;
                    t.bytes += resp.body.len() as u64;
                    if resp.status >= 400 {
                        t.non2xx3xx += 1;
                        t.bump(&format!("status_{}", resp.status));
                    }
                    let seen = shopper.response(&resp, mix, &mut rng);
                    if seen.new_session {
                        t.bump("sessions");
                    }
                    if seen.order {
                        t.bump("orders");
                    }
                    let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
                    t.lat.push((kind, us(done - at), us(done - sent)));
                }
                Err(Failure::Timeout) => t.timeouts += 1,
                Err(_) => t.socket_errors += 1,
            }
        }
        t.connects = conn.connects - connects_before;
        if done.send(t).is_err() {
            return;
        }
    }
}

/// CPU seconds this process used (user + system), from /proc; 0 elsewhere.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name's closing parenthesis: utime, stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0 // USER_HZ
}

/// CPU ticks used by the process trees under `roots`: utime + stime of every
/// live process in them, plus cutime + cstime (the children already reaped).
fn tree_ticks(roots: &[u32]) -> u64 {
    if roots.is_empty() {
        return 0;
    }
    let mut procs: Vec<(u32, u32, u64)> = Vec::new(); // pid, ppid, ticks
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        procs.push((pid, num(1) as u32, num(11) + num(12) + num(13) + num(14)));
    }
    let mut inside: std::collections::HashSet<u32> = roots.iter().copied().collect();
    loop {
        let before = inside.len();
        for &(pid, ppid, _) in &procs {
            if inside.contains(&ppid) {
                inside.insert(pid);
            }
        }
        if inside.len() == before {
            break;
        }
    }
    procs.iter().filter(|p| inside.contains(&p.0)).map(|p| p.2).sum()
}

/// The machine's CPU time from /proc/stat: (busy, steal, total) in ticks.
fn machine_cpu() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return (0, 0, 0) };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).unwrap_or(&0) + v.get(4).unwrap_or(&0);
    let steal = *v.get(7).unwrap_or(&0);
    (total - idle - steal, steal, total)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    let args = parse_args();
    let seed = env_num("ESF_SEED").unwrap_or(1.0) as u64;
    let sh = Arc::new(Shared {
        mix: load_mix(args.base.clone()),
        timeout: args.timeout,
        step: Mutex::new(None),
        go: Barrier::new(args.workers + 1),
        busy: AtomicUsize::new(0),
        max_busy: AtomicUsize::new(0),
    });
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..args.workers)
        .map(|i| {
            let (sh, tx) = (sh.clone(), tx.clone());
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || browser(i, sh, tx))
                .expect("spawning a browser thread")
        })
        .collect();
    drop(tx);

    let mut steps: Vec<(f64, f64, bool)> = Vec::new(); // rate, seconds, warm-up
    if args.warmup > 0.0 {
        steps.push((args.rates[0], args.warmup, true));
    }
    steps.extend(args.rates.iter().map(|&r| (r, args.duration, false)));
    let mut overloaded_in_a_row = 0;
    for (n, &(rate, d, warmup)) in steps.iter().enumerate() {
        let mut attempt = 0;
        let overloaded = loop {
            let (line, overloaded, others) = run_step(&args, &sh, &rx, n, rate, d, warmup, seed);
            let disturbed = !args.stack_pids.is_empty() && args.max_others.is_some_and(|m| others > m);
            println!("{line} disturbed={} attempt={attempt}", disturbed as u8);
            if disturbed && attempt < args.retries {
                attempt += 1;
                thread::sleep(Duration::from_secs(5));
                continue;
            }
            break overloaded;
        };
        if !warmup {
            overloaded_in_a_row = if overloaded { overloaded_in_a_row + 1 } else { 0 };
            if overloaded_in_a_row >= args.stop_after {
                break;
            }
        }
    }
    *sh.step.lock().unwrap() = None;
    sh.go.wait();
    for h in handles {
        h.join().expect("a browser panicked");
    }
}

/// Runs one step; returns its ESF_RESULT line, whether it was overloaded, and
/// the share of the machine everything but the stack and the generator used.
#[allow(clippy::too_many_arguments)]
fn run_step(
    args: &Args,
    sh: &Shared,
    rx: &mpsc::Receiver<Tally>,
    n: usize,
    rate: f64,
    d: f64,
    warmup: bool,
    seed: u64,
) -> (String, bool, f64) {
    let sched = Arc::new(Schedule::new(rate, d, args.poisson, seed));
    *sh.step.lock().unwrap() = Some(sched.clone());
    sh.max_busy.store(0, Ordering::Relaxed);
    let (cpu0, m0, st0) = (cpu_seconds(), machine_cpu(), tree_ticks(&args.stack_pids));
    sh.go.wait();
    let mut all = Tally::default();
    for _ in 0..args.workers {
        all.merge(rx.recv().expect("a browser thread died"));
    }
    let (cpu1, m1, st1) = (cpu_seconds(), machine_cpu(), tree_ticks(&args.stack_pids));
    let elapsed = sched.start.elapsed().as_secs_f64();
    let (scheduled, sent) = sched.totals();
    let mut lat: Vec<u32> = all.lat.iter().map(|x| x.1).collect();
    let mut svc: Vec<u32> = all.lat.iter().map(|x| x.2).collect();
    lat.sort_unstable();
    svc.sort_unstable();
    let errors = all.non2xx3xx + all.socket_errors + all.timeouts;
    let (offered, achieved, p99) = (scheduled as f64 / d, all.responses as f64 / d, pct(&lat, 99.0));
    let held = p99 < args.p99_ms && errors == 0 && achieved >= 0.99 * offered;
    let overloaded = achieved < 0.95 * offered || p99 > 20.0 * args.p99_ms;
    // Shares of the whole machine (all cores), in %.
    let mt = (m1.2 - m0.2).max(1) as f64;
    let busy = 100.0 * (m1.0 - m0.0) as f64 / mt;
    let generator = 100.0 * (cpu1 - cpu0) * 100.0 / mt; // seconds -> ticks (USER_HZ 100)
    let stack = 100.0 * st1.saturating_sub(st0) as f64 / mt;
    let others = if args.stack_pids.is_empty() { 0.0 } else { (busy - stack - generator).max(0.0) };
    let mut line = format!(
        "ESF_RESULT mix=christmas step={n} warmup={} held={} target_rps={rate:.1} offered_rps={offered:.1} \
         achieved_rps={achieved:.1} seconds={d:.1} elapsed={elapsed:.1} scheduled={scheduled} sent={sent} \
         unsent={} responses={} p50_ms={:.2} p90_ms={:.2} p99_ms={p99:.2} max_ms={:.1} svc_p50_ms={:.2} \
         svc_p99_ms={:.2} errors={errors} non2xx3xx={} socket_errors={} timeouts={} workers={} max_busy={} \
         connects={} bytes={} arrivals={} generator_cpu_pct={:.0} machine_busy_pct={busy:.0} \
         machine_steal_pct={:.0} overloaded={}",
        warmup as u8,
        held as u8,
        scheduled - sent,
        all.responses,
        pct(&lat, 50.0),
        pct(&lat, 90.0),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        pct(&svc, 50.0),
        pct(&svc, 99.0),
        all.non2xx3xx,
        all.socket_errors,
        all.timeouts,
        args.workers,
        sh.max_busy.load(Ordering::Relaxed),
        all.connects,
        all.bytes,
        if args.poisson { "poisson" } else { "uniform" },
        100.0 * (cpu1 - cpu0) / elapsed,
        100.0 * (m1.1 - m0.1) as f64 / mt,
        overloaded as u8,
    );
    if !args.stack_pids.is_empty() {
        line.push_str(&format!(" stack_pct={stack:.0} generator_pct={generator:.0} others_pct={others:.0}"));
    }
    for k in Kind::ALL {
        let mut v: Vec<u32> = all.lat.iter().filter(|x| x.0 == k).map(|x| x.1).collect();
        v.sort_unstable();
        if !v.is_empty() {
            line.push_str(&format!(" p99_{}_ms={:.2}", k.name(), pct(&v, 99.0)));
        }
    }
    for (k, v) in &all.counts {
        line.push_str(&format!(" {k}={v}"));
    }
    (line, overloaded, others)
}
