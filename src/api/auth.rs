//! The caller of a request, from its `Authorization: Bearer` header.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::problem::ApiError;
use crate::core::Directory;
use crate::domain::Caller;
use crate::error::ErrorKind;

/// Extracts the [`Caller`]: anonymous without a header, an error for a bad token.
pub struct Auth(pub Caller);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Ready<Result<Auth, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Auth, ApiError> {
    let directory = req
        .app_data::<web::Data<Directory>>()
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "directory not configured"))?;
    let token = match req.headers().get(actix_web::http::header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                ApiError::new(
                    ErrorKind::Unauthenticated,
                    "unreadable Authorization header",
                )
            })?;
            let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(ApiError::new(
                    ErrorKind::Unauthenticated,
                    "use Authorization: Bearer <token from `ccdir token issue`>",
                ));
            }
            Some(token.trim())
        }
    };
    Ok(Auth(directory.authenticate(token)?))
}
