//! `/api/v1/bundles`: trust bundles, the anchor sets this node fetches
//! from a URL or a file and refreshes on an interval.

use std::time::Duration;

use actix_web::{HttpResponse, delete, get, post, web};

use super::auth::Auth;
use super::dto::{BundleDto, BundleRefreshDto, NewBundleBody};
use super::problem::{ApiError, Problem};
use crate::core::{Directory, NewBundle};
use crate::domain::{BundleName, BundleSource};
use crate::error::ErrorKind;

/// All trust bundles (node admin).
#[utoipa::path(
    tag = "bundles",
    responses(
        (status = 200, description = "Trust bundles, by name", body = Vec<BundleDto>),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a node-admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/bundles")]
pub async fn list_bundles(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    let all = directory.list_bundles_as(&caller).await?;
    Ok(HttpResponse::Ok().json(all.iter().map(BundleDto::from).collect::<Vec<_>>()))
}

/// One trust bundle (node admin).
#[utoipa::path(
    tag = "bundles",
    params(("name" = String, Path, description = "The bundle's name")),
    responses(
        (status = 200, description = "The bundle", body = BundleDto),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/bundles/{name}")]
pub async fn get_bundle(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name: BundleName = name.parse()?;
    let bundle = directory.get_bundle_as(&caller, &name).await?;
    Ok(HttpResponse::Ok().json(BundleDto::from(&bundle)))
}

/// Add a trust bundle and fetch it at once (node admin).
///
/// Its certificates become trust anchors and every certificate is re-judged
/// in the background. The bundle is created even when this first fetch
/// fails: `ok` and `bundle.last_refresh` say how it went.
#[utoipa::path(
    tag = "bundles",
    request_body = NewBundleBody,
    responses(
        (status = 201, description = "Added; the first refresh's outcome", body = BundleRefreshDto),
        (status = 400, description = "Bad name, source or interval", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a node-admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A bundle of that name exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The signer is not a certificate", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/bundles")]
pub async fn add_bundle(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    body: web::Json<NewBundleBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let source = match (&body.url, &body.file) {
        (Some(url), None) => BundleSource::url(url)?,
        (None, Some(file)) => BundleSource::file(file)?,
        _ => {
            return Err(ApiError::new(
                ErrorKind::InvalidInput,
                "give exactly one of url and file",
            ));
        }
    };
    let new = NewBundle {
        name: body.name.parse()?,
        source,
        signer: body.signer_pem.map(String::into_bytes),
        refresh: body.refresh_seconds.map(Duration::from_secs),
    };
    let outcome = directory.add_bundle(&caller, new).await?;
    Ok(HttpResponse::Created().json(BundleRefreshDto::from(&outcome)))
}

/// Fetch a trust bundle now (node admin).
///
/// Answers 200 whether or not the refresh succeeded: `ok` and
/// `bundle.last_refresh.code` say how it went; a failed refresh changes no
/// anchor.
#[utoipa::path(
    tag = "bundles",
    params(("name" = String, Path, description = "The bundle's name")),
    responses(
        (status = 200, description = "The refresh's outcome", body = BundleRefreshDto),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/bundles/{name}/refresh")]
pub async fn refresh_bundle(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name: BundleName = name.parse()?;
    let outcome = directory.refresh_bundle(&caller, &name).await?;
    Ok(HttpResponse::Ok().json(BundleRefreshDto::from(&outcome)))
}

/// Remove a trust bundle and its anchors (node admin).
#[utoipa::path(
    tag = "bundles",
    params(("name" = String, Path, description = "The bundle's name")),
    responses(
        (status = 204, description = "Removed; certificates are re-judged in the background"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/bundles/{name}")]
pub async fn delete_bundle(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name: BundleName = name.parse()?;
    directory.remove_bundle(&caller, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
