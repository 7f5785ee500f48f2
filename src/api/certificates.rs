//! `/api/v1/entries/{address}/certificates`: an entry's certificates as
//! JSON, PEM, DER or certs-only PKCS#7 (by `Accept`), upload and removal.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};

use super::auth::Auth;
use super::dto::CertificateDto;
use super::entries::parse_address;
use super::problem::{ApiError, Problem};
use crate::core::{Directory, certs_only_pkcs7};
use crate::domain::{EntryCertificate, Fingerprint, pem_certificate};
use crate::error::ErrorKind;

pub const PEM: &str = "application/x-pem-file";
pub const DER: &str = "application/pkix-cert";
pub const PKCS7: &str = "application/pkcs7-mime";

/// The representations a certificate list can be served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CertFormat {
    Json,
    Pem,
    Der,
    Pkcs7,
}

/// Picks the representation from `Accept` (quality values honoured);
/// JSON when the client does not say.
pub(super) fn negotiate(req: &HttpRequest) -> Result<CertFormat, ApiError> {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(CertFormat::Json);
    };
    let mut ranges: Vec<(f32, String)> = accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0 && !media.is_empty()).then_some((q, media))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, media) in &ranges {
        let format = match media.as_str() {
            "application/json" | "application/*" | "*/*" => CertFormat::Json,
            PEM | "application/x-pem" => CertFormat::Pem,
            DER | "application/x-x509-user-cert" => CertFormat::Der,
            PKCS7 | "application/x-pkcs7-mime" | "application/x-pkcs7-certificates" => {
                CertFormat::Pkcs7
            }
            _ => continue,
        };
        return Ok(format);
    }
    Err(ApiError::new(
        ErrorKind::NotAcceptable,
        format!("available as application/json, {PEM}, {DER} (one certificate) or {PKCS7}"),
    ))
}

/// Answers with `certs` in the negotiated representation. PKCS#7 bundles
/// carry the chains too, so a client can build the path.
pub(super) fn respond(
    format: CertFormat,
    certs: &[EntryCertificate],
    name: &str,
) -> Result<HttpResponse, ApiError> {
    Ok(match format {
        CertFormat::Json => {
            HttpResponse::Ok().json(certs.iter().map(CertificateDto::from).collect::<Vec<_>>())
        }
        CertFormat::Pem => HttpResponse::Ok().content_type(PEM).body(
            certs
                .iter()
                .map(|c| pem_certificate(&c.certificate.der))
                .collect::<String>(),
        ),
        CertFormat::Der => match certs {
            [one] => HttpResponse::Ok()
                .content_type(DER)
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.cer\""),
                ))
                .body(one.certificate.der.clone()),
            _ => {
                return Err(ApiError::new(
                    ErrorKind::NotAcceptable,
                    format!(
                        "{} certificates: DER holds exactly one; ask for {PKCS7} or {PEM}, or fetch one by fingerprint",
                        certs.len()
                    ),
                ));
            }
        },
        CertFormat::Pkcs7 => {
            let mut ders: Vec<&[u8]> = Vec::new();
            for c in certs {
                ders.push(&c.certificate.der);
                for link in &c.chain {
                    if !ders.contains(&link.as_slice()) {
                        ders.push(link);
                    }
                }
            }
            HttpResponse::Ok()
                .content_type(format!("{PKCS7}; smime-type=certs-only"))
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.p7c\""),
                ))
                .body(certs_only_pkcs7(&ders))
        }
    })
}

/// An entry's certificates.
///
/// JSON by default. By `Accept`: `application/x-pem-file` (all, PEM),
/// `application/pkix-cert` (DER, only when there is exactly one) or
/// `application/pkcs7-mime` (certs-only PKCS#7 with chains, a .p7c).
#[utoipa::path(
    tag = "certificates",
    params(("address" = String, Path, description = "Mail address or domain", example = "alice.smith@direct.beaconhillcardio.example.org")),
    responses(
        (status = 200, description = "The certificates", content(
            (Vec<CertificateDto> = "application/json"),
            (String = "application/x-pem-file"),
            (Vec<u8> = "application/pkix-cert"),
            (Vec<u8> = "application/pkcs7-mime"),
        )),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "None of the accepted types can be produced", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
#[get("/api/v1/entries/{address}/certificates")]
pub async fn list_certificates(
    req: HttpRequest,
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    address: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let format = negotiate(&req)?;
    let address = parse_address(&address)?;
    let certs = directory.certificates(&caller, &address).await?;
    respond(format, &certs, "certificates")
}

/// One certificate of an entry, by SHA-256 fingerprint.
#[utoipa::path(
    tag = "certificates",
    params(
        ("address" = String, Path, description = "Mail address or domain"),
        ("fingerprint" = String, Path, description = "SHA-256 of the DER, hex"),
    ),
    responses(
        (status = 200, description = "The certificate", content(
            (Vec<CertificateDto> = "application/json"),
            (String = "application/x-pem-file"),
            (Vec<u8> = "application/pkix-cert"),
            (Vec<u8> = "application/pkcs7-mime"),
        )),
        (status = 404, description = "No such entry or certificate", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
#[get("/api/v1/entries/{address}/certificates/{fingerprint}")]
pub async fn get_certificate(
    req: HttpRequest,
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let format = negotiate(&req)?;
    let (address, fingerprint) = path.into_inner();
    let address = parse_address(&address)?;
    let fingerprint: Fingerprint = fingerprint.parse()?;
    let certs: Vec<_> = directory
        .certificates(&caller, &address)
        .await?
        .into_iter()
        .filter(|c| c.certificate.fingerprint == fingerprint)
        .collect();
    if certs.is_empty() {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("certificate {fingerprint} on {address} not found"),
        ));
    }
    respond(format, &certs, &fingerprint.to_hex())
}

/// Media types an upload may be sent as.
const UPLOAD_TYPES: &[&str] = &[
    PEM,
    DER,
    PKCS7,
    "application/x-pkcs7-certificates",
    "application/x-x509-ca-cert",
    "application/x-x509-user-cert",
    "application/octet-stream",
    "text/plain",
];

pub(super) fn check_upload_type(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match content_type {
        Some(t) if !UPLOAD_TYPES.contains(&t.as_str()) => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("send certificates as one of {}", UPLOAD_TYPES.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Attach certificates to an entry.
///
/// The body is PEM, DER or a certs-only PKCS#7 (.p7b); CA certificates in
/// it are kept as the chain. Every end-entity certificate must bind the
/// entry's address (rfc822Name) or domain (dNSName). Each is judged against
/// the node's trust anchors.
#[utoipa::path(
    tag = "certificates",
    params(("address" = String, Path, description = "Mail address or domain")),
    request_body(description = "PEM, DER or PKCS#7 certs-only", content(
        (String = "application/x-pem-file"),
        (Vec<u8> = "application/pkix-cert"),
        (Vec<u8> = "application/pkcs7-mime"),
    )),
    responses(
        (status = 201, description = "Attached", body = Vec<CertificateDto>),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token may not write this entry", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a certificate, or it does not bind the address", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/entries/{address}/certificates")]
pub async fn add_certificates(
    req: HttpRequest,
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    address: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    check_upload_type(&req)?;
    let address = parse_address(&address)?;
    let (added, _) = directory.add_certificates(&caller, &address, &body).await?;
    Ok(HttpResponse::Created().json(added.iter().map(CertificateDto::from).collect::<Vec<_>>()))
}

/// Detach one certificate from an entry.
#[utoipa::path(
    tag = "certificates",
    params(
        ("address" = String, Path, description = "Mail address or domain"),
        ("fingerprint" = String, Path, description = "SHA-256 of the DER, hex"),
    ),
    responses(
        (status = 204, description = "Detached"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry or certificate", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/entries/{address}/certificates/{fingerprint}")]
pub async fn delete_certificate(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (address, fingerprint) = path.into_inner();
    let address = parse_address(&address)?;
    let fingerprint: Fingerprint = fingerprint.parse()?;
    directory
        .remove_certificate(&caller, &address, &fingerprint)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
