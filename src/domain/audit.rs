//! The audit log's rows and what reads them.

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    /// Who did it, for an operator's action (`client:ops`, `user:<id>`).
    pub actor: Option<String>,
    /// JSON text.
    pub detail: Option<String>,
}

/// Which events to read.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub kind: Option<String>,
    /// Older than this (Unix ms, and the id for ties): the page after a cursor.
    pub before: Option<(i64, String)>,
    pub limit: u32,
}
