//! The status page as people and machines read it: an HTML table like
//! mod_status's server-status, or with `?auto` plain `Key: value` lines.
use std::fmt::Write;

use crate::http::{Response, HTML};
use crate::status::{ChildReport, CounterValues, Gauges, Report};

/// The page for a request whose query string is `query`.
pub fn response(report: &Report, query: Option<&str>) -> Response {
    let auto = query.is_some_and(|q| q.split('&').any(|p| p == "auto"));
    let (content_type, body) = if auto { ("text/plain; charset=utf-8", auto_text(report)) } else { (HTML, html(report)) };
    Response { status: 200, content_type, headers: vec![("Cache-Control", "no-store".into())], body }
}

fn ratio(report_ratio: Option<f64>) -> String {
    format!("{:.3}", report_ratio.unwrap_or(0.0))
}

/// `?auto`: one `Key: value` per line, then a `Child:` line per live child
/// with `name=value` pairs.
pub fn auto_text(report: &Report) -> String {
    let t = &report.totals;
    let g = &report.gauges;
    let mut out = String::new();
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{key}: {value}");
    };
    line("ServerVersion", &format!("mod_esf/{}", report.server.version));
    line("MPM", &report.server.mpm);
    line("Generation", &report.server.generation);
    line("Uptime", &report.uptime);
    line("Children", &report.children.len());
    line("ChildrenRecycled", &report.recycled);
    line("Total Requests", &t.requests);
    line("Errors", &t.server_errors);
    line("ClientErrors", &t.client_errors);
    line("Throttled", &t.throttled);
    line("P50 Microseconds", &t.p50_micros());
    line("P99 Microseconds", &t.p99_micros());
    line("CacheHits", &t.cache_hits);
    line("CacheMisses", &t.cache_misses);
    line("CacheHitRatio", &ratio(t.cache_hit_ratio()));
    line("DbHandlesOpen", &g.db_open);
    line("DbHandlesInUse", &g.db_in_use);
    line("SearchConnections", &g.search_connections);
    for child in &report.children {
        let c = &child.counters;
        let _ = writeln!(
            out,
            "Child: pid={} generation={} uptime={} requests={} errors={} client_errors={} throttled={} p50_us={} p99_us={} \
             cache_hits={} cache_misses={} db_open={} db_in_use={} search_connections={} private_rss_bytes={}",
            child.pid,
            child.generation,
            child.uptime,
            c.requests,
            c.server_errors,
            c.client_errors,
            c.throttled,
            c.p50_micros(),
            c.p99_micros(),
            c.cache_hits,
            c.cache_misses,
            child.gauges.db_open,
            child.gauges.db_in_use,
            child.gauges.search_connections,
            child.private_rss_bytes.unwrap_or(0),
        );
    }
    out
}

fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

fn mebibytes(bytes: Option<u64>) -> String {
    bytes.map(|b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))).unwrap_or_else(|| "-".into())
}

fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

const HEADINGS: [&str; 14] =
    ["PID", "Gen", "Up", "Requests", "5xx", "4xx", "429", "p50", "p99", "Cache hits", "Cache misses", "DB open / in use", "Search conns", "Private RSS"];

/// A child's row, or (`child` None) the totals.
fn row(out: &mut String, label: &str, child: Option<&ChildReport>, counters: &CounterValues, gauges: Gauges) {
    let (generation, uptime, rss) = match child {
        Some(c) => (c.generation.to_string(), duration(c.uptime), mebibytes(c.private_rss_bytes)),
        None => (String::new(), String::new(), String::new()),
    };
    let cells = [
        label.to_string(),
        generation,
        uptime,
        counters.requests.to_string(),
        counters.server_errors.to_string(),
        counters.client_errors.to_string(),
        counters.throttled.to_string(),
        micros(counters.p50_micros()),
        micros(counters.p99_micros()),
        counters.cache_hits.to_string(),
        counters.cache_misses.to_string(),
        format!("{} / {}", gauges.db_open, gauges.db_in_use),
        gauges.search_connections.to_string(),
        rss,
    ];
    out.push_str(if child.is_some() { "<tr>" } else { "<tr class=\"total\">" });
    for cell in cells {
        let _ = write!(out, "<td>{}</td>", escape(&cell));
    }
    out.push_str("</tr>\n");
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The page for people: the server, then a row per live child and the totals.
pub fn html(report: &Report) -> String {
    let t = &report.totals;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mod_esf status</title>\n\
         <style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}\
         tr.total td{font-weight:bold}</style></head><body>\n<h1>mod_esf status</h1>\n",
    );
    let _ = writeln!(
        out,
        "<p>mod_esf/{} under the {} MPM, generation {}, up {}. {} children now; {} recycled (EsfMaxRequestsPerChild, EsfMaxChildMemory).</p>",
        escape(report.server.version),
        escape(&report.server.mpm),
        report.server.generation,
        duration(report.uptime),
        report.children.len(),
        report.recycled,
    );
    let _ = writeln!(
        out,
        "<p>{} requests since the server started: {} 5xx, {} 4xx, {} throttled; p50 {}, p99 {}. Cache hit ratio {}.</p>",
        t.requests,
        t.server_errors,
        t.client_errors,
        t.throttled,
        micros(t.p50_micros()),
        micros(t.p99_micros()),
        ratio(t.cache_hit_ratio()),
    );
    out.push_str("<table>\n<tr>");
    for heading in HEADINGS {
        let _ = write!(out, "<th>{heading}</th>");
    }
    out.push_str("</tr>\n");
    for child in &report.children {
        row(&mut out, &child.pid.to_string(), Some(child), &child.counters, child.gauges);
    }
    row(&mut out, "Total", None, t, report.gauges);
    out.push_str(
        "</table>\n<p>Children's rows count since each child started; the totals count every child since the server started, \
         exited children included; the gauges (DB, search) are the live children's. Latencies are from a request's arrival \
         until its response is ready. <a href=\"?auto\">Machine-readable</a>.</p>\n</body></html>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{bucket_of, ServerFacts};

    fn report() -> Report {
        let mut counters = CounterValues { requests: 3, server_errors: 1, client_errors: 1, throttled: 0, cache_hits: 9, cache_misses: 3, ..Default::default() };
        counters.latency[bucket_of(700)] = 3;
        let gauges = Gauges { db_open: 2, db_in_use: 1, search_connections: 1 };
        Report {
            server: ServerFacts { version: "0.1.0", mpm: "event".into(), generation: 2, now: 5000 },
            uptime: 3700,
            recycled: 4,
            children: vec![ChildReport { pid: 4242, generation: 2, uptime: 61, counters: counters.clone(), gauges, private_rss_bytes: Some(30 << 20) }],
            totals: counters,
            gauges,
        }
    }

    #[test]
    fn auto_is_key_value_lines() {
        let text = auto_text(&report());
        let get = |key: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{key}: "))).unwrap_or_else(|| panic!("{key} in\n{text}"));
        assert_eq!(get("Total Requests"), "3");
        assert_eq!(get("Errors"), "1");
        assert_eq!(get("P50 Microseconds"), "767", "the upper end of the bucket holding 700");
        assert_eq!(get("CacheHitRatio"), "0.750");
        assert_eq!(get("DbHandlesInUse"), "1");
        assert_eq!(get("Generation"), "2");
        assert_eq!(get("Uptime"), "3700");
        assert_eq!(get("ChildrenRecycled"), "4");
        let child = get("Child");
        assert!(child.starts_with("pid=4242 generation=2 uptime=61 requests=3 errors=1 "), "{child}");
        assert!(child.ends_with(&format!("private_rss_bytes={}", 30 << 20)), "{child}");
        assert!(text.lines().all(|l| l.contains(": ")), "{text}");
    }

    #[test]
    fn html_has_a_row_per_child_and_totals() {
        let page = html(&report());
        assert!(page.contains("<td>4242</td><td>2</td><td>1 min 1 s</td><td>3</td><td>1</td><td>1</td><td>0</td><td>767 µs</td>"), "{page}");
        assert!(page.contains("<tr class=\"total\"><td>Total</td>"), "{page}");
        assert!(page.contains("<td>2 / 1</td>") && page.contains("30.0 MiB"), "{page}");
        assert!(page.contains("up 1 h 1 min"), "{page}");
    }

    #[test]
    fn the_query_picks_the_format() {
        assert_eq!(response(&report(), Some("auto")).content_type, "text/plain; charset=utf-8");
        assert_eq!(response(&report(), Some("x=1&auto")).content_type, "text/plain; charset=utf-8");
        assert_eq!(response(&report(), None).content_type, HTML);
        assert_eq!(response(&report(), Some("automatic")).content_type, HTML);
    }
}
