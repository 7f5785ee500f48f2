//! `/api/v1/entries/{address}`: read, create or replace, and remove entries.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, put, web};

use super::auth::Auth;
use super::dto::{EntryBody, EntryDto};
use super::problem::{ApiError, Problem};
use crate::core::Directory;
use crate::domain::DirectoryAddress;

pub(super) fn parse_address(text: &str) -> Result<DirectoryAddress, ApiError> {
    Ok(text.parse::<DirectoryAddress>()?)
}

/// Read one entry.
///
/// Internal entries are visible only with a token of their organisation
/// (or a node admin's); to others they do not exist.
#[utoipa::path(
    tag = "entries",
    params(("address" = String, Path, description = "Mail address, or domain for domain entries", example = "alice.smith@direct.beaconhillcardio.example.org")),
    responses(
        (status = 200, description = "The entry", body = EntryDto),
        (status = 400, description = "Not a valid address", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry (or not visible to the caller)", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
#[get("/api/v1/entries/{address}")]
pub async fn get_entry(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    address: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let address = parse_address(&address)?;
    let view = directory.get_entry(&caller, &address).await?;
    Ok(HttpResponse::Ok().json(EntryDto::from(&view)))
}

/// Create or replace an entry.
///
/// Needs a node-admin token, or an org-admin token of the entry's
/// organisation. Certificates in the body must bind the address and replace
/// the entry's certificates; without them the certificates are kept.
#[utoipa::path(
    tag = "entries",
    params(("address" = String, Path, description = "Mail address, or domain for domain entries", example = "alice.smith@direct.beaconhillcardio.example.org")),
    request_body = EntryBody,
    responses(
        (status = 200, description = "Replaced", body = EntryDto),
        (status = 201, description = "Created", body = EntryDto),
        (status = 400, description = "Invalid field or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token may not write this entry", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A certificate is invalid or does not bind the address", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[put("/api/v1/entries/{address}")]
pub async fn put_entry(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    address: web::Path<String>,
    body: web::Json<EntryBody>,
) -> Result<HttpResponse, ApiError> {
    let address = parse_address(&address)?;
    let input = body.into_inner().into_input()?;
    let outcome = directory.put_entry(&caller, &address, input).await?;
    let dto = EntryDto::from(&outcome.view);
    Ok(if outcome.created {
        HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/entries/{}", dto.address)))
            .json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    })
}

/// Remove an entry and its certificates.
#[utoipa::path(
    tag = "entries",
    params(("address" = String, Path, description = "Mail address, or domain for domain entries", example = "alice.smith@direct.beaconhillcardio.example.org")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token may not write this entry", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/entries/{address}")]
pub async fn delete_entry(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    address: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let address = parse_address(&address)?;
    directory.delete_entry(&caller, &address).await?;
    Ok(HttpResponse::NoContent().finish())
}
