//! `GET /api/v1/search`: find providers by name, organisation, specialty, place.

use actix_web::{HttpResponse, get, web};

use super::auth::Auth;
use super::dto::{SearchParams, SearchResponse};
use super::problem::{ApiError, Problem};
use crate::core::{Directory, SearchRequest};

/// Search the directory.
///
/// Every word must match somewhere (names, organisation, specialty,
/// place, address, identifiers); the last word also matches as a prefix
/// and small typos are forgiven. Anonymous callers see public entries;
/// an organisation's token also sees its internal ones.
#[utoipa::path(
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of results, best first", body = SearchResponse),
        (status = 400, description = "Invalid parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The token was refused", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
#[get("/api/v1/search")]
pub async fn search(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let request = SearchRequest {
        text: p.q.unwrap_or_default(),
        organisation: p.org.as_deref().map(str::parse).transpose()?,
        locality: p.locality,
        kind: p.kind.as_deref().map(str::parse).transpose()?,
        limit: p.limit,
        cursor: p.cursor,
    };
    let results = directory.search(&caller, request).await?;
    Ok(HttpResponse::Ok().json(SearchResponse::from(results)))
}
