//! The full-text search index: a derived view of the database (DESIGN §5).
//!
//! The index holds one document per directory entry ([`IndexDoc`]) and
//! answers ranked, typo-tolerant, type-ahead searches with entry keys; the
//! caller loads the entries themselves from storage. It remembers the last
//! change it applied in the commit itself (tantivy's commit payload), so
//! after a crash it resumes from what is durably on disk, and it can be
//! discarded and rebuilt at any time.
//!
//! Tantivy is an implementation detail: none of its types appear here.
//!
//! * [`SearchIndex::apply`]: the catch-up loop's batches (upserts, removals, new `applied_seq`).
//! * [`SearchIndex::bulk_writer`]: a full rebuild, atomically replacing the contents.
//! * [`SearchIndex::search`]: text search and browse, with filters, scope and cursors.
//! * [`SearchIndex::keys_with_prefix`], [`SearchIndex::keys_with_substring`]: LDAP-style attribute matching.

mod analysis;
mod browse;
mod cursor;
mod document;
mod error;
mod ldap;
mod schema;
mod search;
mod sparse;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tantivy::indexer::{IndexWriterOptions, LogMergePolicy};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};

pub use document::{IndexDoc, IndexOp};
pub use error::IndexError;
pub use ldap::{
    MAX_ATTR_RESULTS, MAX_EXPANSION, RawAttr, Substrings, fold as fold_assertion,
    fold_value as fold_attribute_value, matches as substring_rest_matches,
};
pub use search::{
    DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_BYTES, MAX_QUERY_WORDS, MAX_RANKED_WINDOW, SearchPage,
    SearchQuery, TYPO_FALLBACK,
};
pub use writer::BulkWriter;

use crate::domain::ChangeSeq;
use schema::{Fields, SCHEMA_VERSION};

/// Memory the writer may buffer before it flushes a segment (shared by its
/// threads). More means fewer, larger segments during a rebuild.
const WRITER_MEMORY: usize = 192 * 1024 * 1024;

/// What we keep in the commit payload.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    schema: u32,
    seq: u64,
}

/// The search index. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// `None` while a [`BulkWriter`] holds it.
    writer: Mutex<Option<IndexWriter>>,
    applied: AtomicU64,
    fresh: AtomicBool,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("applied_seq", &self.applied_seq())
            .finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it if missing. The directory
    /// belongs to the index: if what is there was written with another schema
    /// version (or cannot be opened at all), it is wiped and recreated empty,
    /// and [`needs_rebuild`](Self::needs_rebuild) says so.
    pub fn open(dir: &Path) -> Result<SearchIndex, IndexError> {
        std::fs::create_dir_all(dir).map_err(IndexError::io("creating the index directory"))?;
        let (schema, fields) = schema::build();
        let existing = if dir.join("meta.json").exists() {
            match Index::open_in_dir(dir) {
                Ok(index) if index.schema() == schema && stored_payload(&index).is_some() => {
                    Some(index)
                }
                Ok(_) => {
                    tracing::warn!(dir = %dir.display(), "search index has another schema version; rebuilding");
                    None
                }
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "search index cannot be opened; rebuilding");
                    None
                }
            }
        } else {
            None
        };
        let index = match existing {
            Some(index) => index,
            None => {
                wipe(dir)?;
                Index::create_in_dir(dir, schema)
                    .map_err(IndexError::engine("creating the index"))?
            }
        };
        SearchIndex::assemble(index, fields)
    }

    /// A throw-away index in memory, for tests.
    pub fn in_memory() -> Result<SearchIndex, IndexError> {
        let (schema, fields) = schema::build();
        SearchIndex::assemble(Index::create_in_ram(schema), fields)
    }

    fn assemble(mut index: Index, fields: Fields) -> Result<SearchIndex, IndexError> {
        analysis::register(index.tokenizers());
        // A query's segments are searched side by side, one thread per
        // core: at 1 M entries (three large segments) that takes the
        // slowest queries from 6.6 to 5.2 ms at p99 on two cores; more
        // threads than cores only queue.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        if cores > 1 {
            index
                .set_multithread_executor(cores)
                .map_err(IndexError::engine("starting search threads"))?;
        }
        let seq = stored_payload(&index).flatten().map_or(0, |p| p.seq);
        let writer = open_writer(&index)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(IndexError::engine("opening a reader"))?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            writer: Mutex::new(Some(writer)),
            applied: AtomicU64::new(seq),
            fresh: AtomicBool::new(seq == 0),
        })
    }

    /// The last change sequence durably applied: catch up from the one after it.
    pub fn applied_seq(&self) -> ChangeSeq {
        ChangeSeq(self.applied.load(Ordering::Acquire))
    }

    /// True when the index holds nothing it could vouch for (new, wiped for a
    /// schema change, or cleared) and nothing has been committed since: the
    /// caller should rebuild it from the database rather than replay changes.
    pub fn needs_rebuild(&self) -> bool {
        self.fresh.load(Ordering::Acquire)
    }

    /// Number of documents visible to searches (for metrics and tests).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Number of segments searches visit (for metrics and tuning).
    pub fn segment_count(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }
}

/// The payload of the last commit: `None` if it is not ours or from another
/// schema version, `Some(None)` if nothing was ever committed.
fn stored_payload(index: &Index) -> Option<Option<Payload>> {
    let metas = index.load_metas().ok()?;
    match metas.payload {
        None => Some(None),
        Some(text) => match serde_json::from_str::<Payload>(&text) {
            Ok(p) if p.schema == SCHEMA_VERSION => Some(Some(p)),
            _ => None,
        },
    }
}

fn payload(seq: ChangeSeq) -> String {
    serde_json::json!({ "schema": SCHEMA_VERSION, "seq": seq.0 }).to_string()
}

fn open_writer(index: &Index) -> Result<IndexWriter, IndexError> {
    // Tokenising is the expensive part of indexing: one thread per core, up
    // to four. (On two cores, two threads add 300 k documents in 9 s where
    // one takes 14 s; the caller building documents fits in between.)
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = cores.clamp(1, 4);
    let options = IndexWriterOptions::builder()
        .num_worker_threads(threads)
        .memory_budget_per_thread(WRITER_MEMORY / threads)
        .num_merge_threads(1)
        .build();
    let writer: IndexWriter = index
        .writer_with_options(options)
        .map_err(IndexError::engine("opening the writer"))?;
    writer.set_merge_policy(merge_policy());
    Ok(writer)
}

/// How small commits are merged over time.
fn merge_policy() -> Box<dyn tantivy::indexer::MergePolicy> {
    let mut policy = LogMergePolicy::default();
    // Fewer segments means fewer term-dictionary walks per fuzzy term;
    // merging sooner is cheap at our document sizes.
    policy.set_min_num_segments(4);
    Box::new(policy)
}

/// Empties `dir` (the index owns it) so that a new index can be created there.
/// Refuses while another writer (say a second ccdir on the same data
/// directory) holds the lock, and leaves the lock files themselves alone.
fn wipe(dir: &Path) -> Result<(), IndexError> {
    use tantivy::directory::{Directory, INDEX_WRITER_LOCK, MmapDirectory};
    let directory = MmapDirectory::open(dir).map_err(|err| IndexError::Engine {
        context: "opening the index directory",
        source: Box::new(err),
    })?;
    let _lock = directory
        .acquire_lock(&INDEX_WRITER_LOCK)
        .map_err(|_| IndexError::Locked)?;
    let entries = std::fs::read_dir(dir).map_err(IndexError::io("listing the index directory"))?;
    for entry in entries {
        let path = entry
            .map_err(IndexError::io("listing the index directory"))?
            .path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".tantivy-"))
        {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(IndexError::io("wiping the index directory"))?;
    }
    Ok(())
}
