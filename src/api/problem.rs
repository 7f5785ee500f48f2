//! RFC 7807 problem responses. Every error the API answers goes through
//! here, with its status and `type` taken from the one error table.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::CoreError;
use crate::error::ErrorKind;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 7807 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://ccdir.dev/problems/certificate-not-bound",
    "title": "Certificate does not bind the address",
    "status": 422,
    "detail": "certificate names alice@cardio.example.org, not bob@cardio.example.org"
}))]
pub struct Problem {
    /// Stable URI naming the kind of problem; switch on this.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, for people.
    pub detail: String,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub detail: String,
    /// Seconds, for 429 answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        ApiError {
            kind,
            detail: detail.into(),
            retry_after: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.codes().slug, self.detail)
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let kind = e.kind();
        if matches!(e, CoreError::Starting(_)) {
            // Expected while the node starts; a readiness probe polling
            // `/readyz` would otherwise log an error per poll.
            tracing::debug!(error = %e, "request refused");
        } else if kind.codes().http_status >= 500 {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(kind, e.public_detail())
    }
}

impl From<crate::domain::DomainError> for ApiError {
    fn from(e: crate::domain::DomainError) -> Self {
        CoreError::from(e).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.kind.codes().http_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let codes = self.kind.codes();
        let body = Problem {
            problem_type: self.kind.problem_type(),
            title: codes.title.to_owned(),
            status: codes.http_status,
            detail: self.detail.clone(),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.kind == ErrorKind::Unauthenticated {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ccdir\""),
            ));
        }
        response.json(body)
    }
}

/// Turns actix's own extractor errors (bad JSON, oversized bodies, bad
/// query strings) into problems, so no error leaves in another shape.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        ),
        J::ContentType => ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "send the body as application/json",
        ),
        J::Deserialize(e) => ApiError::new(ErrorKind::Malformed, format!("invalid JSON body: {e}")),
        other => ApiError::new(ErrorKind::Malformed, format!("unreadable body: {other}")),
    }
}

pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidInput,
        format!("invalid query string: {err}"),
    )
}

pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::new(ErrorKind::InvalidInput, format!("invalid path: {err}"))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The log lines written while `f` runs, at every level.
    fn logged(f: impl FnOnce()) -> String {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || SharedBuf(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct SharedBuf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn refusals_while_starting_are_not_logged_as_errors_but_failures_are() {
        let starting = logged(|| {
            let e = ApiError::from(CoreError::Starting("starting the front ends"));
            assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        });
        assert!(starting.contains("DEBUG"), "{starting}");
        assert!(!starting.contains("ERROR"), "{starting}");

        let failed = logged(|| {
            let _ = ApiError::from(CoreError::Internal("disk on fire".into()));
        });
        assert!(failed.contains("ERROR"), "{failed}");
        assert!(failed.contains("disk on fire"), "{failed}");
    }
}
