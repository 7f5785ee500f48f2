//! The search operation (RFC 4511 §4.5): where in the tree to look (base and
//! scope), what to match (the filter, as core criteria), what to return
//! (attribute selection, typesOnly), and how much (client and server size
//! and time limits, Simple Paged Results).
//!
//! Results come in tree order: the base entry, then organisations (by id),
//! then directory entries in key order. Entries come from one core query;
//! the synthetic nodes (base, organisations) are matched here.
//!
//! Limits: a search returns at most `min(client sizeLimit, ldap.size_limit)`
//! entries and ends with sizeLimitExceeded (4) when more matched. With
//! paged results the page size is capped at `ldap.size_limit` and the
//! client's sizeLimit is not applied across pages. The time limit is
//! `min(client timeLimit, ldap.time_limit_seconds)`; when it passes the
//! entries found so far are sent with timeLimitExceeded (3).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapMsg, LdapOp, LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchScope,
};

use super::Ldap;
use super::ber::EncodedEntries;
use super::entry::{self, Selection};
use super::error::LdapError;
use super::filter::{NodeFilter, to_criteria};
use super::paging::{Position, search_id};
use super::rootdse::root_dse;
use crate::core::{EntryQuery, Placement};
use crate::domain::{Caller, Criteria, Field, TreeNode};

/// The Simple Paged Results request control's values.
#[derive(Debug, Clone)]
pub struct PagedRequest {
    /// Entries wanted on this page; 0 abandons the paged search.
    pub size: i64,
    /// Empty on the first page; the previous page's cookie after that.
    pub cookie: Vec<u8>,
}

/// A synthetic node of the tree.
struct Node {
    dn: String,
    attributes: Vec<(&'static str, Vec<String>)>,
    structural: &'static str,
}

/// Synthetic nodes a search covers: `all[from..]`.
struct Nodes {
    all: Arc<Vec<Node>>,
    from: usize,
}

impl Nodes {
    fn none() -> Nodes {
        Nodes {
            all: Arc::new(Vec::new()),
            from: 0,
        }
    }

    fn one(node: Node) -> Nodes {
        Nodes {
            all: Arc::new(vec![node]),
            from: 0,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Node> {
        self.all[self.from..].iter()
    }
}

/// The base node followed by every organisation's, built once per version
/// of the organisations rather than on every search.
#[derive(Default)]
pub(super) struct TreeNodes {
    built: RwLock<Option<(u64, Arc<Vec<Node>>)>>,
}

impl TreeNodes {
    /// The base and organisation nodes as of now.
    async fn get(&self, ldap: &Ldap) -> Result<Arc<Vec<Node>>, LdapError> {
        let version = ldap.directory.organisations_version();
        if let Some((v, nodes)) = &*self.built.read().expect("tree nodes lock")
            && *v == version
        {
            return Ok(nodes.clone());
        }
        let mut nodes = vec![base_node(ldap)];
        nodes.extend(
            ldap.directory
                .list_organisations()
                .await?
                .iter()
                .map(|org| org_node(ldap, org)),
        );
        let nodes = Arc::new(nodes);
        *self.built.write().expect("tree nodes lock") = Some((version, nodes.clone()));
        Ok(nodes)
    }
}

fn base_node(ldap: &Ldap) -> Node {
    Node {
        dn: ldap.tree.base_dn.clone(),
        attributes: entry::base_attributes(&ldap.tree),
        structural: "organization",
    }
}

fn org_node(ldap: &Ldap, org: &crate::domain::Organisation) -> Node {
    Node {
        dn: ldap.tree.organisation_dn(&org.id),
        attributes: entry::organisation_attributes(org),
        structural: "organization",
    }
}

/// Which directory entries a search covers.
enum Entries {
    None,
    Query(Criteria, Placement),
}

/// How a search ended.
struct Ending {
    code: LdapResultCode,
    message: String,
    cookie: Option<Vec<u8>>,
}

fn result(code: LdapResultCode, message: String) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message,
        referral: Vec::new(),
    }
}

/// The LDAP result code of an error, from the error table.
pub fn error_code(e: &LdapError) -> LdapResultCode {
    LdapResultCode::try_from(i64::from(e.result_code())).unwrap_or(LdapResultCode::Other)
}

/// Answers a search: its entries (encoded), then the done message.
pub async fn search(
    ldap: &Ldap,
    caller: &Caller,
    secure: bool,
    msgid: i32,
    request: &LdapSearchRequest,
    paged: Option<&PagedRequest>,
) -> (EncodedEntries, LdapMsg) {
    let mut out = EncodedEntries::new(msgid);
    let ending = match run(ldap, caller, secure, request, paged, &mut out).await {
        Ok(ending) => ending,
        Err(e) => Ending {
            code: error_code(&e),
            message: e.public_message(),
            cookie: paged.map(|_| Vec::new()),
        },
    };
    let ctrl = match ending.cookie {
        Some(cookie) => vec![LdapControl::SimplePagedResults { size: 0, cookie }],
        None => Vec::new(),
    };
    let done = LdapMsg {
        msgid,
        op: LdapOp::SearchResultDone(result(ending.code, ending.message)),
        ctrl,
    };
    (out, done)
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn run(
    ldap: &Ldap,
    caller: &Caller,
    secure: bool,
    request: &LdapSearchRequest,
    paged: Option<&PagedRequest>,
    out: &mut EncodedEntries,
) -> Result<Ending, LdapError> {
    let node = ldap
        .tree
        .locate(&request.base)
        .map_err(|e| LdapError::InvalidDn(e.to_string()))?;
    let selection = Selection::new(&request.attrs);
    let success = |cookie| Ending {
        code: LdapResultCode::Success,
        message: String::new(),
        cookie,
    };
    if node == TreeNode::RootDse {
        if request.scope != LdapSearchScope::Base {
            return Err(LdapError::NoSuchObject);
        }
        let tls = ldap.tls.is_some() && !secure;
        if let Some(e) = root_dse(
            &ldap.tree.base_dn,
            tls,
            &request.filter,
            &selection,
            request.typesonly,
        ) {
            out.push(&e);
        }
        return Ok(success(paged.map(|_| Vec::new())));
    }

    let (nodes, entries) = plan(ldap, caller, node, &request.scope, &request.filter).await?;

    // How many, from where, until when.
    let server_limit = ldap.limits.size_limit;
    let (limit, mut position) = match paged {
        Some(p) if p.size <= 0 => return Ok(success(Some(Vec::new()))),
        Some(p) => {
            let size = usize::try_from(p.size)
                .unwrap_or(usize::MAX)
                .min(server_limit);
            let position = if p.cookie.is_empty() {
                Position::Synthetic(0)
            } else {
                ldap.cookies
                    .read(&p.cookie, search_id(request), now_seconds())?
            };
            (size, position)
        }
        None => {
            let client = usize::try_from(request.sizelimit).unwrap_or(0);
            let limit = if client == 0 {
                server_limit
            } else {
                client.min(server_limit)
            };
            (limit, Position::Synthetic(0))
        }
    };
    let mut time_limit = ldap.limits.time_limit;
    if request.timelimit > 0 {
        time_limit = time_limit.min(Duration::from_secs(request.timelimit.unsigned_abs().into()));
    }
    let deadline = Instant::now() + time_limit;

    let mut sent = 0usize;
    let mut next: Option<Position> = None;
    if let Position::Synthetic(from) = position {
        let filter = NodeFilter::new(&request.filter);
        for (i, node) in nodes.iter().enumerate().skip(from as usize) {
            if filter.matches(&node.attributes) != Some(true) {
                continue;
            }
            if sent == limit {
                next = Some(Position::Synthetic(i as u32));
                break;
            }
            entry::synthetic(
                out,
                &node.dn,
                &node.attributes,
                node.structural,
                &selection,
                request.typesonly,
            );
            sent += 1;
        }
        position = Position::EntriesAfter(None);
    }
    let mut timed_out = false;
    if let (None, Entries::Query(criteria, placement), Position::EntriesAfter(after)) =
        (&next, entries, position)
    {
        let room = limit - sent;
        let query = EntryQuery {
            criteria,
            placement,
            after: after.clone(),
            limit: room.max(1),
            deadline: Some(deadline),
        };
        let page = ldap.directory.query_entries(caller, &query).await?;
        timed_out = page.timed_out;
        if room == 0 {
            if !page.entries.is_empty() {
                next = Some(Position::EntriesAfter(after));
            }
        } else {
            let last = page.entries.last().map(|v| v.record.entry.address.key());
            for view in &page.entries {
                entry::entry(out, &ldap.tree, view, &selection, request.typesonly);
            }
            if page.more {
                next = Some(Position::EntriesAfter(last.or(after)));
            }
        }
    }

    if timed_out {
        return Ok(Ending {
            code: LdapResultCode::TimeLimitExceeded,
            message: "time limit exceeded".into(),
            cookie: paged.map(|_| Vec::new()),
        });
    }
    match (paged, next) {
        (Some(_), Some(next)) => Ok(success(Some(ldap.cookies.issue(
            search_id(request),
            &next,
            now_seconds(),
        )))),
        (Some(_), None) => Ok(success(Some(Vec::new()))),
        (None, Some(_)) => Ok(Ending {
            code: LdapResultCode::SizeLimitExceeded,
            message: format!("size limit of {limit} entries exceeded"),
            cookie: None,
        }),
        (None, None) => Ok(success(None)),
    }
}

/// The synthetic nodes and the entries a search of `node` with `scope` covers.
async fn plan(
    ldap: &Ldap,
    caller: &Caller,
    node: TreeNode,
    scope: &LdapSearchScope,
    filter: &ldap3_proto::proto::LdapFilter,
) -> Result<(Nodes, Entries), LdapError> {
    use LdapSearchScope::{Base, Children, OneLevel, Subtree};
    let criteria = || to_criteria(filter);
    Ok(match node {
        TreeNode::RootDse => (Nodes::none(), Entries::None),
        TreeNode::Base => {
            let tree = |from| async move {
                Ok::<_, LdapError>(Nodes {
                    all: ldap.tree_nodes.get(ldap).await?,
                    from,
                })
            };
            match scope {
                Base => (Nodes::one(base_node(ldap)), Entries::None),
                OneLevel => (
                    tree(1).await?,
                    Entries::Query(criteria(), Placement::WithoutOrganisation),
                ),
                Subtree => (
                    tree(0).await?,
                    Entries::Query(criteria(), Placement::Anywhere),
                ),
                Children => (
                    tree(1).await?,
                    Entries::Query(criteria(), Placement::Anywhere),
                ),
            }
        }
        TreeNode::Organisation(id) => {
            let org = ldap
                .directory
                .get_organisation(&id)
                .await
                .map_err(|_| LdapError::NoSuchObject)?;
            let entries = Entries::Query(criteria(), Placement::InOrganisation(id));
            match scope {
                Base => (Nodes::one(org_node(ldap, &org)), Entries::None),
                OneLevel | Children => (Nodes::none(), entries),
                Subtree => (Nodes::one(org_node(ldap, &org)), entries),
            }
        }
        TreeNode::Entry { key, organisation } => {
            let found = ldap.directory.lookup_entry(caller, &key).await?;
            match found {
                Some(view) if view.record.entry.organisation == organisation => {}
                _ => return Err(LdapError::NoSuchObject),
            }
            match scope {
                Base | Subtree => {
                    let placement = match organisation {
                        Some(org) => Placement::InOrganisation(org),
                        None => Placement::WithoutOrganisation,
                    };
                    let exact =
                        Criteria::And(vec![Criteria::Equals(Field::Address, key), criteria()]);
                    (Nodes::none(), Entries::Query(exact, placement))
                }
                OneLevel | Children => (Nodes::none(), Entries::None),
            }
        }
        TreeNode::User { .. } | TreeNode::Outside => return Err(LdapError::NoSuchObject),
    })
}
