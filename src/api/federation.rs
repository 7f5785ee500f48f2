//! `/federation/v1/`: this node's signed log for its parent and for
//! auditors — the signed (tree) head, pages of records, Merkle inclusion
//! and consistency proofs — and the ping a child sends when its log grows.
//! Anonymous: everything served is signed and public.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::{ApiError, Problem};
use crate::core::{ConsistencyJson, Directory, HeadJson, InclusionJson, PageJson};

/// A signed head: the log's length, the hash of its last record and the
/// Merkle root over all records, signed by the node. Only `encoded` counts
/// (base64 of the canonical bytes, see docs/federation.md); the other
/// fields repeat it for people.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "log": "4f2a…", "signer": "4f2a…", "size": 1024,
    "head_hash": "9b1c…", "root_hash": "77de…",
    "time": "2026-12-02T10:00:00.000000Z", "encoded": "Y2NkaXIvaGVhZC92MQ…"
}))]
pub struct HeadDto {
    /// The log (node key, hex).
    pub log: String,
    /// The key that signed the head (hex).
    pub signer: String,
    /// Number of records (= the last sequence number).
    pub size: u64,
    /// SHA-256 of the last record (hex).
    pub head_hash: String,
    /// RFC 6962 Merkle root over records 1..=size (hex).
    pub root_hash: String,
    /// When it was signed.
    pub time: String,
    /// Base64 of the canonical signed head.
    pub encoded: String,
}

impl From<HeadJson> for HeadDto {
    fn from(h: HeadJson) -> Self {
        HeadDto {
            log: h.log,
            signer: h.signer,
            size: h.size,
            head_hash: h.head_hash,
            root_hash: h.root_hash,
            time: h.time,
            encoded: h.encoded,
        }
    }
}

/// One record of the log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordDto {
    /// Its sequence number.
    pub seq: u64,
    /// SHA-256 of the record (hex): the next record's `prev`.
    pub hash: String,
    /// Base64 of the canonical signed record.
    pub record: String,
}

/// A page of the log and the head as of the same read.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PageDto {
    /// The log (node key, hex).
    pub log: String,
    /// The signed head, never behind the records of the page.
    pub head: HeadDto,
    /// The records after `after`, in order.
    pub records: Vec<RecordDto>,
}

impl From<PageJson> for PageDto {
    fn from(p: PageJson) -> Self {
        PageDto {
            log: p.log,
            head: p.head.into(),
            records: p
                .records
                .into_iter()
                .map(|r| RecordDto {
                    seq: r.seq,
                    hash: r.hash,
                    record: r.record,
                })
                .collect(),
        }
    }
}

/// Query of `GET /federation/v1/log`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Records after this sequence number (0: from the start).
    #[serde(default)]
    pub after: u64,
    /// At most this many (default: the node's page size; at most 5000).
    pub limit: Option<u64>,
}

/// An RFC 6962 audit path.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionDto {
    /// The record's sequence number (leaf index + 1).
    pub seq: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// SHA-256(0x00 || record), hex.
    pub leaf_hash: String,
    /// Sibling hashes, innermost first (hex).
    pub path: Vec<String>,
}

impl From<InclusionJson> for InclusionDto {
    fn from(p: InclusionJson) -> Self {
        InclusionDto {
            seq: p.seq,
            size: p.size,
            leaf_hash: p.leaf_hash,
            path: p.path,
        }
    }
}

/// Query of `GET /federation/v1/proof/inclusion`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    /// The record.
    pub seq: u64,
    /// The tree size (default: the whole log).
    pub size: Option<u64>,
}

/// An RFC 6962 consistency proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyDto {
    /// The earlier tree size.
    pub first: u64,
    /// The later tree size.
    pub second: u64,
    /// The proof (hex).
    pub path: Vec<String>,
}

impl From<ConsistencyJson> for ConsistencyDto {
    fn from(p: ConsistencyJson) -> Self {
        ConsistencyDto {
            first: p.first,
            second: p.second,
            path: p.path,
        }
    }
}

/// Query of `GET /federation/v1/proof/consistency`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The earlier tree size.
    pub first: u64,
    /// The later tree size (default: the whole log).
    pub second: Option<u64>,
}

/// The body of a notify ping.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"log": "9c1e…"}))]
pub struct NotifyBody {
    /// The child's log (node key, hex).
    pub log: String,
}

/// What a ping did.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyDto {
    /// True when this node pulls that child and will pull it now.
    pub pulling: bool,
}

/// This node's signed head (also its signed tree head).
#[utoipa::path(
    tag = "federation",
    responses((status = 200, description = "The signed head", body = HeadDto))
)]
#[get("/federation/v1/head")]
pub async fn head(directory: web::Data<Directory>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(HeadDto::from(directory.federation_head().await?)))
}

/// A page of this node's log.
///
/// Parents ask from one record before their cursor, so that the first
/// record is one they hold (a different one is a fork).
#[utoipa::path(
    tag = "federation",
    params(PageParams),
    responses(
        (status = 200, description = "Records after `after`, with the signed head", body = PageDto),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/federation/v1/log")]
pub async fn log_page(
    directory: web::Data<Directory>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = directory
        .federation_page(params.after, params.limit)
        .await?;
    Ok(HttpResponse::Ok().json(PageDto::from(page)))
}

/// The Merkle inclusion proof of a record.
#[utoipa::path(
    tag = "federation",
    params(InclusionParams),
    responses(
        (status = 200, description = "The audit path", body = InclusionDto),
        (status = 400, description = "seq outside the tree", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The log is not that long", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/federation/v1/proof/inclusion")]
pub async fn inclusion(
    directory: web::Data<Directory>,
    params: web::Query<InclusionParams>,
) -> Result<HttpResponse, ApiError> {
    let proof = directory
        .federation_inclusion(params.seq, params.size)
        .await?;
    Ok(HttpResponse::Ok().json(InclusionDto::from(proof)))
}

/// The Merkle consistency proof between two tree sizes.
#[utoipa::path(
    tag = "federation",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The proof", body = ConsistencyDto),
        (status = 400, description = "first > second", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The log is not that long", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/federation/v1/proof/consistency")]
pub async fn consistency(
    directory: web::Data<Directory>,
    params: web::Query<ConsistencyParams>,
) -> Result<HttpResponse, ApiError> {
    let proof = directory
        .federation_consistency(params.first, params.second)
        .await?;
    Ok(HttpResponse::Ok().json(ConsistencyDto::from(proof)))
}

/// A child's log has grown: pull it now.
#[utoipa::path(
    tag = "federation",
    request_body = NotifyBody,
    responses(
        (status = 202, description = "Noted", body = NotifyDto),
        (status = 400, description = "Not a node key", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/federation/v1/notify")]
pub async fn notify(
    directory: web::Data<Directory>,
    body: web::Json<NotifyBody>,
) -> Result<HttpResponse, ApiError> {
    let pulling = directory.federation_notify(&body.log)?;
    Ok(HttpResponse::Accepted().json(NotifyDto { pulling }))
}
