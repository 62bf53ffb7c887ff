//! `/metrics`: kube-apiserver's request metrics, by the names its dashboards use:
//! `apiserver_request_total` and the `apiserver_request_duration_seconds` histogram, by verb,
//! group, version, resource, subresource (and code for the total).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

use super::resources::ResourceInfo;

/// kube-apiserver's request-duration buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// `leader_election_master_status`: the components this process runs under a leader
    /// election, and whether it leads each (what kube-scheduler and kube-controller-manager
    /// export).
    leading: Mutex<BTreeMap<String, tokio::sync::watch::Receiver<bool>>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Labels without code -> (count by code, histogram counts, sum).
    series: BTreeMap<String, Series>,
}

#[derive(Debug, Default)]
struct Series {
    by_code: BTreeMap<u16, u64>,
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn observe(
        &self,
        verb: &str,
        info: &ResourceInfo,
        subresource: Option<&str>,
        code: u16,
        took: Duration,
    ) {
        let labels = format!(
            "component=\"apiserver\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{verb}\",version=\"{}\"",
            info.group,
            info.plural,
            if info.namespaced { "namespace" } else { "cluster" },
            subresource.unwrap_or(""),
            info.version,
        );
        let mut inner = self.inner.lock();
        let series = inner.series.entry(labels).or_default();
        *series.by_code.entry(code).or_default() += 1;
        if series.buckets.is_empty() {
            series.buckets = vec![0; BUCKETS.len()];
        }
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                series.buckets[i] += 1;
            }
        }
        series.count += 1;
        series.sum += secs;
    }

    /// Reports `leading` as `leader_election_master_status{name="<name>"}`.
    pub fn elected(&self, name: &str, leading: tokio::sync::watch::Receiver<bool>) {
        self.leading.lock().insert(name.to_string(), leading);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let leading = self.leading.lock();
        if !leading.is_empty() {
            out.push_str("# HELP leader_election_master_status [ALPHA] Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.\n# TYPE leader_election_master_status gauge\n");
            for (name, leads) in leading.iter() {
                let _ = writeln!(
                    out,
                    "leader_election_master_status{{name=\"{name}\"}} {}",
                    u8::from(*leads.borrow())
                );
            }
        }
        drop(leading);
        let inner = self.inner.lock();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        for (labels, s) in &inner.series {
            for (code, n) in &s.by_code {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{code=\"{code}\",{labels}}} {n}"
                );
            }
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for (labels, s) in &inner.series {
            for (le, n) in BUCKETS.iter().zip(&s.buckets) {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}
