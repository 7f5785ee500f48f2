//! Liveness, readiness and metrics.

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::{ApiError, Problem};
use crate::core::Directory;
use crate::telemetry::Metrics;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "node": "4f2a…", "database": "sqlite", "head": 2315, "indexed": 2315}))]
pub struct Ready {
    pub status: &'static str,
    /// This node's id (ed25519 public key, hex).
    pub node: String,
    /// sqlite or postgres.
    pub database: &'static str,
    /// Last change sequence written.
    pub head: u64,
    /// Last change sequence the search index has applied.
    pub indexed: u64,
}

/// Liveness: the process answers.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: every front end is up (and, with `serve --demo`, the demo
/// directory is loaded and searchable) and the database answers; shows how
/// far the search index lags.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready yet (front ends starting, demo directory loading; the problem's detail says which) or the database is unreachable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(directory: web::Data<Directory>) -> Result<HttpResponse, ApiError> {
    let r = directory.readiness().await?;
    Ok(HttpResponse::Ok().json(Ready {
        status: "ready",
        node: directory.node_id().to_string(),
        database: r.database,
        head: r.head.0,
        indexed: r.indexed.0,
    }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text"))
)]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Arc<Metrics>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}
