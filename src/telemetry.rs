//! Logs, request ids and metrics.
//!
//! What may be logged: methods, paths (never query strings: OAuth codes and WeChat secrets travel
//! there), statuses, durations, request ids, openids and user ids. Never a token, a session_key,
//! an AppSecret or a password: those are `SecretString` or hashed before they come near a log
//! line. The log sink is a parameter so that a test can read everything a run wrote.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};
use prometheus_client::registry::Registry;
use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber, writing to `sink`. `RUST_LOG` refines the default level.
pub fn init<W>(format: LogFormat, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,poem=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    // A second init (tests, `demo`) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// A new request id: a v4 UUID without dashes.
pub fn new_request_id() -> String {
    // From the thread's CSPRNG rather than a getrandom syscall per request (`new_v4`): an id
    // needs to be unique, not secret.
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .simple()
        .to_string()
}

/// Accepts a caller's `x-request-id` when it is short and plain, so ids can be followed across
/// services; anything else is replaced.
pub fn accept_request_id(given: Option<&str>) -> String {
    match given {
        Some(id)
            if (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_string()
        }
        _ => new_request_id(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    operation: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WechatLabels {
    api: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
}

struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<OperationLabels, Histogram>,
    wechat_calls: Family<WechatLabels, Counter>,
    wechat_duration: Family<ApiLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(
        [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]
        .into_iter(),
    )
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("wxlogin");
    let http_requests = Family::<HttpLabels, Counter>::default();
    let http_duration = Family::<OperationLabels, Histogram>::new_with_constructor(
        latency_histogram as fn() -> Histogram,
    );
    let wechat_calls = Family::<WechatLabels, Counter>::default();
    let wechat_duration = Family::<ApiLabels, Histogram>::new_with_constructor(
        latency_histogram as fn() -> Histogram,
    );
    registry.register(
        "http_requests",
        "HTTP requests answered",
        http_requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to answer an HTTP request",
        http_duration.clone(),
    );
    registry.register(
        "wechat_calls",
        "Calls to WeChat's server APIs, by outcome (ok, an errcode, unavailable)",
        wechat_calls.clone(),
    );
    registry.register(
        "wechat_call_duration_seconds",
        "Time WeChat took to answer one attempt",
        wechat_duration.clone(),
    );
    Metrics {
        registry: Mutex::new(registry),
        http_requests,
        http_duration,
        wechat_calls,
        wechat_duration,
    }
});

/// Counts one answered request.
pub fn record_http(operation: &str, method: &str, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    m.http_requests
        .get_or_create(&HttpLabels {
            operation: operation.to_string(),
            method: method.to_string(),
            status,
        })
        .inc();
    m.http_duration
        .get_or_create(&OperationLabels {
            operation: operation.to_string(),
        })
        .observe(elapsed.as_secs_f64());
}

/// Counts one attempt of a call to WeChat.
pub fn record_wechat_call(api: &str, outcome: &str, elapsed: Duration) {
    let m = &*METRICS;
    m.wechat_calls
        .get_or_create(&WechatLabels {
            api: api.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
    m.wechat_duration
        .get_or_create(&ApiLabels {
            api: api.to_string(),
        })
        .observe(elapsed.as_secs_f64());
}

/// The metrics in Prometheus' text format.
pub fn render_metrics() -> String {
    let mut out = String::new();
    let registry = METRICS.registry.lock().unwrap_or_else(|e| e.into_inner());
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Who asked, for the audit log: the request's id and client IP, set by the edge middleware
/// around each request's handler.
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    pub request_id: String,
    pub client_ip: Option<std::net::IpAddr>,
    /// The route's path (which way a sign-in came).
    pub path: String,
}

tokio::task_local! {
    static REQUEST: RequestInfo;
}

/// Runs `work` as the request `info`.
pub async fn with_request<F: std::future::Future>(info: RequestInfo, work: F) -> F::Output {
    REQUEST.scope(info, work).await
}

/// The request being served, where there is one.
pub fn current_request() -> Option<RequestInfo> {
    REQUEST.try_with(Clone::clone).ok()
}
