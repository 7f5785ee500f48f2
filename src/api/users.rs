//! `/api/v1/organisations/{id}/users`: the users of an organisation, who
//! bind over LDAP (`uid=<name>,o=<id>,<base>`) to see its internal entries.
//! Managed by node admins and by that organisation's admins.

use actix_web::{HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::problem::{ApiError, Problem};
use crate::core::Directory;
use crate::domain::{OrgId, User, UserName};

/// A user of an organisation (its password is never shown).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "organisation": "beacon-hill-cardiology",
    "name": "frontdesk",
    "created_at": "2026-12-01T09:00:00Z",
    "updated_at": "2026-12-01T09:00:00Z"
}))]
pub struct UserDto {
    pub organisation: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            organisation: u.organisation.to_string(),
            name: u.name.to_string(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// The body to create a user or set a new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "correct horse battery staple"}))]
pub struct UserBody {
    /// At least 8 characters; stored only as an argon2id hash.
    pub password: String,
}

/// The users of an organisation (node admin or the organisation's admin).
#[utoipa::path(
    tag = "users",
    params(("id" = String, Path, description = "Organisation id", example = "beacon-hill-cardiology")),
    responses(
        (status = 200, description = "Users by name", body = Vec<UserDto>),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this organisation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/organisations/{id}/users")]
pub async fn list_users(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let org: OrgId = id.parse()?;
    let users = directory.list_users(&caller, &org).await?;
    Ok(HttpResponse::Ok().json(users.iter().map(UserDto::from).collect::<Vec<_>>()))
}

/// Create a user or set its password (node admin or the organisation's admin).
#[utoipa::path(
    tag = "users",
    params(
        ("id" = String, Path, description = "Organisation id", example = "beacon-hill-cardiology"),
        ("name" = String, Path, description = "User name: a-z, 0-9, '.', '_', '-'", example = "frontdesk"),
    ),
    request_body = UserBody,
    responses(
        (status = 200, description = "Password replaced", body = UserDto),
        (status = 201, description = "Created", body = UserDto),
        (status = 400, description = "Invalid name or password", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this organisation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[put("/api/v1/organisations/{id}/users/{name}")]
pub async fn put_user(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: web::Json<UserBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, name) = path.into_inner();
    let org: OrgId = org.parse()?;
    let name: UserName = name.parse()?;
    let (user, created) = directory
        .put_user(&caller, &org, &name, &body.password)
        .await?;
    let dto = UserDto::from(&user);
    Ok(if created {
        HttpResponse::Created().json(dto)
    } else {
        HttpResponse::Ok().json(dto)
    })
}

/// Remove a user (node admin or the organisation's admin).
#[utoipa::path(
    tag = "users",
    params(
        ("id" = String, Path, description = "Organisation id"),
        ("name" = String, Path, description = "User name"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this organisation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/organisations/{id}/users/{name}")]
pub async fn delete_user(
    directory: web::Data<Directory>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, name) = path.into_inner();
    let org: OrgId = org.parse()?;
    let name: UserName = name.parse()?;
    directory.remove_user(&caller, &org, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
