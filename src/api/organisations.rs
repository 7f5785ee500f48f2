//! `/api/v1/organisations`: list, read, create, replace and remove organisations.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, put, web};

use super::auth::Auth;
use super::dto::{OrganisationBody, OrganisationDto};
use super::problem::{ApiError, Problem};
use crate::core::Directory;
use crate::domain::OrgId;
use crate::error::ErrorKind;

/// All organisations on this node.
#[utoipa::path(
    tag = "organisations",
    responses((status = 200, description = "Organisations by id", body = Vec<OrganisationDto>)),
)]
#[get("/api/v1/organisations")]
pub async fn list_organisations(directory: web::Data<Directory>) -> Result<HttpResponse, ApiError> {
    let all = directory.list_organisations().await?;
    Ok(HttpResponse::Ok().json(all.iter().map(OrganisationDto::from).collect::<Vec<_>>()))
}

/// One organisation.
#[utoipa::path(
    tag = "organisations",
    params(("id" = String, Path, description = "Organisation id", example = "beacon-hill-cardiology")),
    responses(
        (status = 200, description = "The organisation", body = OrganisationDto),
        (status = 404, description = "No such organisation", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/organisations/{id}")]
pub async fn get_organisation(
    directory: web::Data<Directory>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: OrgId = id.parse()?;
    let org = directory.get_organisation(&id).await?;
    Ok(HttpResponse::Ok().json(OrganisationDto::from(&org)))
}

/// Create an organisation (node admin).
#[utoipa::path(
    tag = "organisations",
    request_body = OrganisationBody,
    responses(
        (status = 201, description = "Created", body = OrganisationDto),
        (status = 400, description = "Invalid or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a node-admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/organisations")]
pub async fn create_organisation(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    body: web::Json<OrganisationBody>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into_input()?;
    let id = input
        .id
        .clone()
        .ok_or_else(|| ApiError::new(ErrorKind::InvalidInput, "the body needs an id"))?;
    if directory.get_organisation(&id).await.is_ok() {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("organisation {id} exists; PUT replaces it"),
        ));
    }
    let (org, _) = directory.put_organisation(&caller, &id, input).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/organisations/{id}")))
        .json(OrganisationDto::from(&org)))
}

/// Create or replace an organisation (node admin).
#[utoipa::path(
    tag = "organisations",
    params(("id" = String, Path, description = "Organisation id")),
    request_body = OrganisationBody,
    responses(
        (status = 200, description = "Replaced", body = OrganisationDto),
        (status = 201, description = "Created", body = OrganisationDto),
        (status = 400, description = "Invalid or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a node-admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[put("/api/v1/organisations/{id}")]
pub async fn put_organisation(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: web::Json<OrganisationBody>,
) -> Result<HttpResponse, ApiError> {
    let id: OrgId = id.parse()?;
    let input = body.into_inner().into_input()?;
    let (org, created) = directory.put_organisation(&caller, &id, input).await?;
    let dto = OrganisationDto::from(&org);
    Ok(if created {
        HttpResponse::Created().json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    })
}

/// Remove an organisation that has no entries left (node admin).
#[utoipa::path(
    tag = "organisations",
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It still has entries", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/organisations/{id}")]
pub async fn delete_organisation(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: OrgId = id.parse()?;
    directory.delete_organisation(&caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
