//! The REST front end (actix-web) and its OpenAPI document (utoipa).
//!
//! Transport lives here: listener, limits, middleware, error shape. What an
//! operation means lives in one file per resource, each a thin translation
//! to one [`crate::core::Directory`] call.

mod anchors;
mod auth;
mod bundles;
mod certificates;
mod dto;
mod entries;
mod federation;
mod health;
mod middleware;
mod organisations;
mod policies;
mod problem;
mod search;
mod users;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::config::ApiConfig;
use crate::core::Directory;
use crate::error::ErrorKind;
use crate::telemetry::Metrics;

pub use problem::{ApiError, PROBLEM_JSON, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ccdir",
        description = "A federated directory of S/MIME certificates: search providers, \
                       read and manage entries and their certificates, organisations and trust anchors. \
                       Errors are RFC 7807 problem documents whose `type` comes from one stable table.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "search", description = "Find providers by name, organisation, specialty or place"),
        (name = "entries", description = "Directory entries: people, organisations, services, domains"),
        (name = "certificates", description = "Certificates of an entry, as JSON, PEM, DER or PKCS#7"),
        (name = "organisations", description = "Organisations and their domains"),
        (name = "anchors", description = "Trust anchors the node judges certificates against"),
        (name = "bundles", description = "Trust bundles: anchor sets fetched from a URL or file and refreshed on an interval"),
        (name = "users", description = "Users of an organisation, who bind over LDAP"),
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "federation", description = "This node's signed publication log: head, pages, Merkle proofs, notify"),
        (name = "policies", description = "Fair-play policies: signed list and de-list events, checks with evidence, feeds (polling, server-sent events, webhooks)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A token from `ccdir token issue` (EdDSA, signed by the node key)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every documented route.
fn routes(cfg: &mut ServiceConfig) {
    cfg.service(search::search)
        .service(entries::get_entry)
        .service(entries::put_entry)
        .service(entries::delete_entry)
        .service(certificates::list_certificates)
        .service(certificates::get_certificate)
        .service(certificates::add_certificates)
        .service(certificates::delete_certificate)
        .service(organisations::list_organisations)
        .service(organisations::get_organisation)
        .service(organisations::create_organisation)
        .service(organisations::put_organisation)
        .service(organisations::delete_organisation)
        .service(anchors::list_anchors)
        .service(anchors::get_anchor)
        .service(anchors::add_anchors)
        .service(anchors::delete_anchor)
        .service(bundles::list_bundles)
        .service(bundles::add_bundle)
        .service(bundles::get_bundle)
        .service(bundles::refresh_bundle)
        .service(bundles::delete_bundle)
        .service(users::list_users)
        .service(users::put_user)
        .service(users::delete_user)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(federation::head)
        .service(federation::log_page)
        .service(federation::inclusion)
        .service(federation::consistency)
        .service(federation::notify)
        .service(policies::submit_events)
        .service(policies::feed)
        .service(policies::list_policies)
        .service(policies::get_policy)
        .service(policies::policy_events)
        .service(policies::listings)
        .service(policies::check)
        .service(policies::check_many)
        .service(webhooks::add_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::get_webhook)
        .service(webhooks::delete_webhook);
}

/// The OpenAPI document, as committed under `openapi/ccdir.json`.
pub fn openapi_json() -> String {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    let mut text = api
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

/// Which error kind an actix-made error status stands for.
fn kind_for_status(status: u16) -> (ErrorKind, &'static str) {
    match status {
        401 => (ErrorKind::Unauthenticated, "authentication required"),
        403 => (ErrorKind::Forbidden, "forbidden"),
        404 => (ErrorKind::NotFound, "no such resource"),
        405 => (
            ErrorKind::Unsupported,
            "method not allowed on this resource",
        ),
        406 => (
            ErrorKind::NotAcceptable,
            "cannot produce an accepted media type",
        ),
        413 => (
            ErrorKind::PayloadTooLarge,
            "the body is larger than the limit",
        ),
        415 => (ErrorKind::UnsupportedMediaType, "unsupported media type"),
        429 => (ErrorKind::RateLimited, "too many requests"),
        400..=499 => (ErrorKind::Malformed, "the request could not be read"),
        503 => (ErrorKind::Unavailable, "service unavailable"),
        _ => (ErrorKind::Internal, "internal error"),
    }
}

/// Makes sure no error leaves in another shape than a problem document
/// (actix answers some, such as an oversized upload, on its own).
fn ensure_problem<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (kind, detail) = kind_for_status(res.status().as_u16());
    let (req, _) = res.into_parts();
    let response = ApiError::new(kind, detail).error_response();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorKind::NotFound, "no such resource"))
}

/// A bound REST server: spawn `server` to run it, stop it with `handle`.
pub struct ApiServer {
    pub local_addr: SocketAddr,
    pub handle: ServerHandle,
    pub server: Server,
}

/// Binds the listener and builds the server; run it by awaiting `server`.
pub fn bind(
    directory: Directory,
    config: &ApiConfig,
    metrics: Arc<Metrics>,
) -> std::io::Result<ApiServer> {
    let spec = web::Data::new(openapi_json());
    let limiter = web::Data::new(middleware::ClientLimiter::new(
        config.rate_limit_per_second,
        config.rate_limit_burst,
    ));
    let limit = config.max_body_bytes;
    let directory = web::Data::new(directory);
    let metrics = web::Data::new(metrics);
    let http = HttpServer::new(move || {
        App::new()
            .app_data(directory.clone())
            .app_data(metrics.clone())
            .app_data(limiter.clone())
            .app_data(spec.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(|e, _| problem::json_error(e).into()),
            )
            .app_data(web::PayloadConfig::new(limit))
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| problem::query_error(e).into()),
            )
            .app_data(
                web::PathConfig::default().error_handler(|e, _| problem::path_error(e).into()),
            )
            .wrap(from_fn(middleware::rate_limit))
            .wrap(ErrorHandlers::new().default_handler(ensure_problem))
            .wrap(from_fn(middleware::record_metrics))
            .into_utoipa_app()
            .configure(routes)
            .into_app()
            .route(
                "/api/openapi.json",
                web::get().to(|spec: web::Data<String>| async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(spec.get_ref().clone())
                }),
            )
            .default_service(web::to(not_found))
    })
    .workers(
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(8),
    )
    .shutdown_timeout(10)
    .disable_signals()
    .bind(config.listen)?;
    let local_addr = http
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("the REST listener bound no address"))?;
    let server = http.run();
    Ok(ApiServer {
        local_addr,
        handle: server.handle(),
        server,
    })
}
