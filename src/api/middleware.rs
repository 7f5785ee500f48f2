//! Cross-cutting request handling: per-client rate limits and metrics.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::problem::ApiError;
use crate::error::ErrorKind;
use crate::telemetry::{HttpLabels, Metrics};

/// Per-client-IP token buckets.
pub struct ClientLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl ClientLimiter {
    pub fn new(per_second: u32, burst: u32) -> Arc<ClientLimiter> {
        let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(per_second);
        Arc::new(ClientLimiter {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
        })
    }

    /// `Err(seconds to wait)` when the client is over its limit.
    fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })?;
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        Ok(())
    }
}

pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let limiter = req.app_data::<web::Data<Arc<ClientLimiter>>>().cloned();
    let ip = req.peer_addr().map(|a| a.ip());
    if let (Some(limiter), Some(ip)) = (limiter, ip)
        && let Err(seconds) = limiter.check(ip)
    {
        if let Some(metrics) = req.app_data::<web::Data<Arc<Metrics>>>() {
            metrics.rate_limited.inc();
        }
        let mut err = ApiError::new(
            ErrorKind::RateLimited,
            "too many requests from this address",
        );
        err.retry_after = Some(seconds.max(1));
        return Err(err.into());
    }
    next.call(req).await
}

pub async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Arc<Metrics>>>().cloned();
    let method = req.method().to_string();
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let (route, status) = match &result {
            Ok(res) => (
                res.request()
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".into()),
                res.status().as_u16(),
            ),
            Err(e) => (
                "unmatched".into(),
                e.as_response_error().status_code().as_u16(),
            ),
        };
        let labels = HttpLabels {
            method,
            route,
            status,
        };
        metrics.http_requests.get_or_create(&labels).inc();
        metrics
            .http_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    result
}
