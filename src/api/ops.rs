//! Health, readiness and metrics.

use poem::web::Data;
use poem_openapi::{payload::PlainText, ApiResponse, OpenApi};

use super::Tag;
use crate::accounts::Accounts;
use crate::readiness::Readiness;

#[derive(ApiResponse)]
pub enum Ready {
    /// Redis (or the in-process store) and the database answer.
    #[oai(status = 200)]
    Ready(PlainText<&'static str>),
    /// A dependency does not answer; the body says which.
    #[oai(status = 503)]
    NotReady(PlainText<String>),
}

pub struct OpsApi;

#[OpenApi(tag = "Tag::Ops")]
impl OpsApi {
    /// The process is up
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// Redis and the database answer, on every serving thread
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, accounts: Data<&Accounts>, readiness: Data<&Readiness>) -> Ready {
        match readiness.check(&accounts).await {
            Ok(()) => Ready::Ready(PlainText("ready")),
            Err(why) => Ready::NotReady(PlainText(format!("not ready: {why}"))),
        }
    }

    /// Prometheus metrics
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(crate::telemetry::render_metrics())
    }
}
