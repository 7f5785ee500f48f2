//! `/api/v1/webhooks`: subscriptions that POST each policy event to a URL,
//! signed by this node (see docs/policies.md), retried with backoff and
//! dead-lettered after the configured number of tries. Any valid token.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::problem::{ApiError, Problem};
use crate::core::WebhookRow;
use crate::core::{Directory, WebhookView};
use crate::domain::PolicyId;

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where to POST events (http or https).
    #[schema(example = "https://hisp.example.org/ccdir-events")]
    pub url: String,
    /// Only this policy's events; every policy's when absent.
    pub policy: Option<String>,
    /// Deliver events after this feed position (default: from now on).
    pub after: Option<u64>,
}

/// An event a subscription gave up on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDto {
    /// The event's feed position.
    pub event_seq: u64,
    pub attempts: u32,
    pub last_error: String,
    pub at: DateTime<Utc>,
}

/// A subscription and how its deliveries stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub url: String,
    /// Delivered (or dead-lettered) up to this feed position.
    pub cursor: u64,
    /// Tries of the next event so far.
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub delivered: u64,
    pub dead_letter_count: u64,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dead_letters: Vec<DeadLetterDto>,
}

impl From<&WebhookRow> for WebhookDto {
    fn from(w: &WebhookRow) -> Self {
        WebhookDto {
            id: w.id,
            policy: w.policy.as_ref().map(ToString::to_string),
            url: w.url.clone(),
            cursor: w.cursor,
            attempts: w.attempts,
            next_attempt_at: w.next_attempt_at,
            last_error: w.last_error.clone(),
            delivered: w.delivered,
            dead_letter_count: w.dead_letters,
            created_at: w.created_at,
            dead_letters: Vec::new(),
        }
    }
}

impl From<&WebhookView> for WebhookDto {
    fn from(v: &WebhookView) -> Self {
        let mut dto = WebhookDto::from(&v.subscription);
        dto.dead_letters = v
            .dead_letters
            .iter()
            .map(|d| DeadLetterDto {
                event_seq: d.event_seq,
                attempts: d.attempts,
                last_error: d.last_error.clone(),
                at: d.at,
            })
            .collect();
        dto
    }
}

/// Subscribe a URL to policy events.
#[utoipa::path(
    tag = "policies",
    request_body = WebhookBody,
    responses(
        (status = 201, description = "Subscribed", body = WebhookDto),
        (status = 400, description = "Bad URL or policy id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such policy", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/webhooks")]
pub async fn add_webhook(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    body: web::Json<WebhookBody>,
) -> Result<HttpResponse, ApiError> {
    let policy = body
        .policy
        .as_deref()
        .map(str::parse::<PolicyId>)
        .transpose()?;
    let view = directory
        .add_webhook(&caller, policy.as_ref(), &body.url, body.after)
        .await?;
    Ok(HttpResponse::Created().json(WebhookDto::from(&view)))
}

/// Every subscription and how it stands.
#[utoipa::path(
    tag = "policies",
    responses(
        (status = 200, description = "Subscriptions", body = Vec<WebhookDto>),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/webhooks")]
pub async fn list_webhooks(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    let all = directory.webhooks(&caller).await?;
    Ok(HttpResponse::Ok().json(all.iter().map(WebhookDto::from).collect::<Vec<_>>()))
}

/// One subscription with its dead letters.
#[utoipa::path(
    tag = "policies",
    params(("id" = u64, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = WebhookDto),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/webhooks/{id}")]
pub async fn get_webhook(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    id: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let view = directory.webhook(&caller, *id).await?;
    Ok(HttpResponse::Ok().json(WebhookDto::from(&view)))
}

/// End a subscription.
#[utoipa::path(
    tag = "policies",
    params(("id" = u64, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/webhooks/{id}")]
pub async fn delete_webhook(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    id: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    directory.delete_webhook(&caller, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}
