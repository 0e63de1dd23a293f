//! What signing in costs (docs/BENCHMARKS.md, "Signing in"), against a running server that
//! `scripts/bench-auth.sh` prepared: a project with one issue, a member signed in, an API
//! token.
//!
//! One keep-alive client sends sequential `GET /api/v1/projects/<id>/issues` with (a) the
//! project token, (b) the member's session cookie, (c) the member's API token, alternated in
//! rounds (a, b, c, a, b, c, …) after a warm-up of each, and prints one JSON line per
//! credential: mean, p50 and p99 latency in µs, the server's CPU per request (utime + stime
//! of `/proc/<pid>/stat`, summed over that credential's rounds) and the differences to (a),
//! which are what a cached session or API-token check costs. Then it times failed sign-ins
//! (`POST /api/v1/session`, one Argon2id verification each), sequentially: unknown e-mails
//! (verified against the decoy hash) and the member's e-mail with a wrong password (fewer
//! than the 10 failures that lock it), one JSON line each.
//!
//! `target/release/examples/auth_cost --url http://127.0.0.1:PORT --project ID \
//!      --project-token HEX --cookie SECRET --api-token mshr_… --member EMAIL \
//!      --server-pid PID [--clk-tck 100] [--requests 2000] [--warmup 200] [--rounds 4] \
//!      [--sign-ins 20]`

use serde_json::json;
use std::time::{Duration, Instant};

/// The command line.
struct Args {
    url: String,
    project: i64,
    project_token: String,
    cookie: String,
    api_token: String,
    member: String,
    server_pid: u32,
    clk_tck: f64,
    requests: usize,
    warmup: usize,
    rounds: usize,
    sign_ins: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        project: 0,
        project_token: String::new(),
        cookie: String::new(),
        api_token: String::new(),
        member: String::new(),
        server_pid: 0,
        clk_tck: 100.0,
        requests: 2_000,
        warmup: 200,
        rounds: 4,
        sign_ins: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = |v: &str| -> usize { v.parse().unwrap_or_else(|_| panic!("{flag}: {v}")) };
        match flag.as_str() {
            "--url" => a.url = v.trim_end_matches('/').to_owned(),
            "--project" => a.project = num(&v) as i64,
            "--project-token" => a.project_token = v,
            "--cookie" => a.cookie = v,
            "--api-token" => a.api_token = v,
            "--member" => a.member = v,
            "--server-pid" => a.server_pid = num(&v) as u32,
            "--clk-tck" => a.clk_tck = num(&v) as f64,
            "--requests" => a.requests = num(&v),
            "--warmup" => a.warmup = num(&v),
            "--rounds" => a.rounds = num(&v).max(1),
            "--sign-ins" => a.sign_ins = num(&v),
            _ => panic!("unknown flag {flag}"),
        }
    }
    assert!(
        !a.url.is_empty() && a.project > 0 && a.server_pid > 0,
        "--url, --project and --server-pid are required"
    );
    a
}

/// The server's CPU time (utime + stime), in clock ticks.
fn server_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's stat");
    // After the command's closing parenthesis: field 3 (state) is the first; 14 and 15
    // (utime, stime) the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// One credential and how a request carries it.
struct Credential {
    name: &'static str,
    header: (&'static str, String),
    latencies_us: Vec<f64>,
    ticks: u64,
}

/// Sends one issue-list request with `c`'s header, reads the whole answer; its latency.
async fn one_request(client: &reqwest::Client, url: &str, c: &Credential) -> Duration {
    let t = Instant::now();
    let r = client
        .get(url)
        .header(c.header.0, &c.header.1)
        .send()
        .await
        .expect("the request");
    let status = r.status();
    let body = r.bytes().await.expect("the body");
    let took = t.elapsed();
    assert!(
        status.is_success() && body.windows(4).any(|w| w == b"\"id\""),
        "{}: {status} {}",
        c.name,
        String::from_utf8_lossy(&body)
    );
    took
}

/// Mean, p50 and p99 of `v` (sorted here).
fn summary(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (v.iter().sum::<f64>() / v.len() as f64, at(0.50), at(0.99))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = parse_args();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .expect("a client");
    let issues = format!("{}/api/v1/projects/{}/issues", a.url, a.project);
    let mut creds = [
        Credential {
            name: "project token",
            header: ("authorization", format!("Bearer {}", a.project_token)),
            latencies_us: Vec::new(),
            ticks: 0,
        },
        Credential {
            name: "session cookie",
            header: ("cookie", format!("mesher_session={}", a.cookie)),
            latencies_us: Vec::new(),
            ticks: 0,
        },
        Credential {
            name: "API token",
            header: ("authorization", format!("Bearer {}", a.api_token)),
            latencies_us: Vec::new(),
            ticks: 0,
        },
    ];
    for c in &creds {
        for _ in 0..a.warmup {
            one_request(&client, &issues, c).await;
        }
    }
    let per_round = a.requests.div_ceil(a.rounds);
    for _ in 0..a.rounds {
        for c in creds.iter_mut() {
            let before = server_ticks(a.server_pid);
            let mut lat = Vec::with_capacity(per_round);
            for _ in 0..per_round {
                lat.push(one_request(&client, &issues, c).await.as_secs_f64() * 1e6);
            }
            c.ticks += server_ticks(a.server_pid) - before;
            c.latencies_us.extend(lat);
        }
    }
    let mut base: Option<(f64, f64, f64)> = None;
    for c in creds.iter_mut() {
        let n = c.latencies_us.len();
        let (mean, p50, p99) = summary(&mut c.latencies_us);
        let cpu = c.ticks as f64 / a.clk_tck * 1e6 / n as f64;
        let (b_mean, b_p50, b_cpu) = *base.get_or_insert((mean, p50, cpu));
        println!(
            "{}",
            json!({
                "scenario": "issues",
                "credential": c.name,
                "requests": n,
                "rounds": a.rounds,
                "mean_us": round1(mean),
                "p50_us": round1(p50),
                "p99_us": round1(p99),
                "server_cpu_us_per_request": round1(cpu),
                "mean_minus_project_token_us": round1(mean - b_mean),
                "p50_minus_project_token_us": round1(p50 - b_p50),
                "cpu_minus_project_token_us": round1(cpu - b_cpu),
            })
        );
    }

    // Failed sign-ins. The first one is not counted: it computes the decoy hash once.
    let session = format!("{}/api/v1/session", a.url);
    let sign_in = |email: String| {
        let client = &client;
        let session = &session;
        async move {
            let t = Instant::now();
            let r = client
                .post(session)
                .header("content-type", "application/json")
                .body(json!({"email": email, "password": "not the password, wrong"}).to_string())
                .send()
                .await
                .expect("the sign-in");
            let status = r.status();
            r.bytes().await.expect("the body");
            assert_eq!(status.as_u16(), 401, "a wrong sign-in of {email}");
            t.elapsed().as_secs_f64() * 1e3
        }
    };
    sign_in("warm-up@auth-bench.example".into()).await;
    let unknown = (0..a.sign_ins)
        .map(|i| format!("nobody{i}@auth-bench.example"))
        .collect();
    let member = vec![a.member.clone(); a.sign_ins.min(9)];
    let cases = [
        ("unknown e-mail (decoy hash)", unknown),
        ("the member, wrong password", member),
    ];
    for (who, emails) in cases {
        let n = emails.len();
        if n == 0 {
            continue;
        }
        let before = server_ticks(a.server_pid);
        let t = Instant::now();
        let mut ms = Vec::with_capacity(n);
        for email in emails {
            ms.push(sign_in(email).await);
        }
        let seconds = t.elapsed().as_secs_f64();
        let ticks = server_ticks(a.server_pid) - before;
        let (mean, p50, p99) = summary(&mut ms);
        println!(
            "{}",
            json!({
                "scenario": "sign-in, wrong",
                "who": who,
                "attempts": n,
                "mean_ms": round1(mean),
                "p50_ms": round1(p50),
                "max_ms": round1(p99),
                "server_cpu_ms_per_attempt": round1(ticks as f64 / a.clk_tck * 1e3 / n as f64),
                "server_busy": (ticks as f64 / a.clk_tck / seconds * 100.0).round() / 100.0,
            })
        );
    }
}
