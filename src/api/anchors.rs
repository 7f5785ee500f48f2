//! `/api/v1/anchors`: the certificates this node trusts as path roots.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};

use super::auth::Auth;
use super::certificates::{CertFormat, check_upload_type, negotiate};
use super::dto::AnchorDto;
use super::problem::{ApiError, Problem};
use crate::core::Directory;
use crate::domain::{Fingerprint, pem_certificate};

/// All trust anchors.
#[utoipa::path(
    tag = "anchors",
    responses((status = 200, description = "Trust anchors", body = Vec<AnchorDto>)),
)]
#[get("/api/v1/anchors")]
pub async fn list_anchors(directory: web::Data<Directory>) -> Result<HttpResponse, ApiError> {
    let all = directory.list_anchors().await?;
    Ok(HttpResponse::Ok().json(all.iter().map(AnchorDto::from).collect::<Vec<_>>()))
}

/// One trust anchor: JSON, or PEM / DER by `Accept`.
#[utoipa::path(
    tag = "anchors",
    params(("fingerprint" = String, Path, description = "SHA-256 of the DER, hex")),
    responses(
        (status = 200, description = "The anchor", content(
            (AnchorDto = "application/json"),
            (String = "application/x-pem-file"),
            (Vec<u8> = "application/pkix-cert"),
        )),
        (status = 404, description = "No such anchor", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/anchors/{fingerprint}")]
pub async fn get_anchor(
    req: HttpRequest,
    directory: web::Data<Directory>,
    fingerprint: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let format = negotiate(&req)?;
    let fingerprint: Fingerprint = fingerprint.parse()?;
    let anchor = directory.get_anchor(&fingerprint).await?;
    let der = &anchor.certificate.der;
    Ok(match format {
        CertFormat::Json => HttpResponse::Ok().json(AnchorDto::from(&anchor)),
        CertFormat::Pem => HttpResponse::Ok()
            .content_type(super::certificates::PEM)
            .body(pem_certificate(der)),
        CertFormat::Der | CertFormat::Pkcs7 => HttpResponse::Ok()
            .content_type(super::certificates::DER)
            .body(der.clone()),
    })
}

/// Add trust anchors (node admin).
///
/// The body is PEM, DER or a certs-only PKCS#7 bundle; every certificate in
/// it becomes an anchor. All certificates are then re-judged in the background.
#[utoipa::path(
    tag = "anchors",
    request_body(description = "PEM, DER or PKCS#7 certs-only", content(
        (String = "application/x-pem-file"),
        (Vec<u8> = "application/pkix-cert"),
        (Vec<u8> = "application/pkcs7-mime"),
    )),
    responses(
        (status = 201, description = "Added", body = Vec<AnchorDto>),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a node-admin token", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a certificate", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/anchors")]
pub async fn add_anchors(
    req: HttpRequest,
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    check_upload_type(&req)?;
    let added = directory.add_anchors(&caller, &body, "manual").await?;
    Ok(HttpResponse::Created().json(added.iter().map(AnchorDto::from).collect::<Vec<_>>()))
}

/// Remove a trust anchor (node admin).
#[utoipa::path(
    tag = "anchors",
    params(("fingerprint" = String, Path, description = "SHA-256 of the DER, hex")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such anchor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/anchors/{fingerprint}")]
pub async fn delete_anchor(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    fingerprint: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let fingerprint: Fingerprint = fingerprint.parse()?;
    directory.delete_anchor(&caller, &fingerprint).await?;
    Ok(HttpResponse::NoContent().finish())
}
