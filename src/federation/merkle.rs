//! The log as a Merkle tree, as RFC 6962 §2.1 (and RFC 9162 §2.1) define
//! it: leaf `i` is record `i + 1`, hashed as `SHA-256(0x00 || record)`;
//! an interior node is `SHA-256(0x01 || left || right)`; a tree of `n > 1`
//! leaves splits at `k`, the largest power of two below `n`; the empty
//! tree's root is `SHA-256("")`.
//!
//! Storage keeps only *perfect* subtrees (`2^level` leaves starting at a
//! multiple of `2^level`), which never change once complete: appending a
//! leaf completes one node per trailing one-bit of its index, two rows per
//! leaf on average. Any range the RFC recursion visits starts at a
//! multiple of the largest power of two not above its length, so it is
//! one perfect node or splits into one perfect node and a smaller range:
//! a root or proof needs O(log² n) stored nodes. Proof functions take a
//! lookup closure; call them once with a recording closure to learn which
//! nodes to fetch, then with the fetched values.

use super::types::{Hash, sha256, sha256_parts};

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256_parts(&[&[0u8], data])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_parts(&[&[1u8], &left.0, &right.0])
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// A perfect subtree: leaves `index << level .. (index + 1) << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeRef {
    /// Height: 0 for a leaf.
    pub level: u8,
    /// Position among the subtrees of this height.
    pub index: u64,
}

/// The largest power of two below `n` (for `n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `start .. start + n` (`n >= 1`, `start` aligned as
/// the RFC recursion guarantees).
fn range_hash<E>(
    start: u64,
    n: u64,
    get: &mut (impl FnMut(NodeRef) -> Result<Hash, E> + ?Sized),
) -> Result<Hash, E> {
    if n.is_power_of_two() {
        let level = n.trailing_zeros() as u8;
        return get(NodeRef {
            level,
            index: start >> level,
        });
    }
    let k = split(n);
    let left = range_hash(start, k, get)?;
    let right = range_hash(start + k, n - k, get)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves.
pub fn root<E>(
    size: u64,
    get: &mut (impl FnMut(NodeRef) -> Result<Hash, E> + ?Sized),
) -> Result<Hash, E> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(0, size, get)
}

/// The audit path of leaf `index` in the tree of `size` leaves
/// (RFC 6962 §2.1.1 `PATH`), innermost first. `index < size`.
pub fn inclusion_path<E>(
    index: u64,
    size: u64,
    get: &mut (impl FnMut(NodeRef) -> Result<Hash, E> + ?Sized),
) -> Result<Vec<Hash>, E> {
    fn path<E>(
        m: u64,
        start: u64,
        n: u64,
        out: &mut Vec<Hash>,
        get: &mut (impl FnMut(NodeRef) -> Result<Hash, E> + ?Sized),
    ) -> Result<(), E> {
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            path(m, start, k, out, get)?;
            out.push(range_hash(start + k, n - k, get)?);
        } else {
            path(m - k, start + k, n - k, out, get)?;
            out.push(range_hash(start, k, get)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if index < size {
        path(index, 0, size, &mut out, get)?;
    }
    Ok(out)
}

/// The proof that the tree of `first` leaves is a prefix of the tree of
/// `second` leaves (RFC 6962 §2.1.2 `PROOF`). Empty when
/// `first == 0` or `first >= second`.
pub fn consistency_path<E>(
    first: u64,
    second: u64,
    get: &mut (impl FnMut(NodeRef) -> Result<Hash, E> + ?Sized),
) -> Result<Vec<Hash>, E> {
    fn sub<E>(
        m: u64,
        start: u64,
        n: u64,
        whole: bool,
        out: &mut Vec<Hash>,
        get: &mut (impl FnMut(NodeRef) -> Result<Hash, E> + ?Sized),
    ) -> Result<(), E> {
        if m == n {
            if !whole {
                out.push(range_hash(start, n, get)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            sub(m, start, k, whole, out, get)?;
            out.push(range_hash(start + k, n - k, get)?);
        } else {
            sub(m - k, start + k, n - k, false, out, get)?;
            out.push(range_hash(start, k, get)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if first > 0 && first < second {
        sub(first, 0, second, true, &mut out, get)?;
    }
    Ok(out)
}

/// The nodes a computation would look up: run `f` with a recording
/// closure that answers zeros (structure depends on sizes only).
pub fn nodes_needed<T>(
    f: impl FnOnce(&mut dyn FnMut(NodeRef) -> Result<Hash, ()>) -> Result<T, ()>,
) -> Vec<NodeRef> {
    let mut seen = Vec::new();
    let mut record = |n: NodeRef| -> Result<Hash, ()> {
        seen.push(n);
        Ok(Hash::ZERO)
    };
    let _ = f(&mut record);
    seen.sort();
    seen.dedup();
    seen
}

/// Checks an audit path (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fi, mut si) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if si == 0 {
            return false;
        }
        if fi & 1 == 1 || fi == si {
            r = node_hash(p, &r);
            while fi & 1 == 0 && fi != 0 {
                fi >>= 1;
                si >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fi >>= 1;
        si >>= 1;
    }
    si == 0 && r == *root
}

/// Checks a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fi, mut si) = (first - 1, second - 1);
    while fi & 1 == 1 {
        fi >>= 1;
        si >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if si == 0 {
            return false;
        }
        if fi & 1 == 1 || fi == si {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fi & 1 == 0 && fi != 0 {
                fi >>= 1;
                si >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fi >>= 1;
        si >>= 1;
    }
    fr == *first_root && sr == *second_root && si == 0
}

/// The perfect subtrees along the right edge of a tree of `size` leaves,
/// highest first: one per one-bit of `size`. Appending needs exactly these.
pub fn frontier_refs(size: u64) -> Vec<NodeRef> {
    (0..64u8)
        .rev()
        .filter(|l| size >> l & 1 == 1)
        .map(|level| NodeRef {
            level,
            index: (size >> level) - 1,
        })
        .collect()
}

/// The right edge of a growing tree: enough to append leaves and compute
/// the root without reading anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Highest level first, as [`frontier_refs`] lists them.
    nodes: Vec<(NodeRef, Hash)>,
}

impl Frontier {
    /// The empty tree.
    pub fn empty() -> Frontier {
        Frontier {
            size: 0,
            nodes: Vec::new(),
        }
    }

    /// The frontier of a tree of `size` leaves from its nodes; `None` when
    /// one of [`frontier_refs`]`(size)` is missing from `lookup`.
    pub fn from_nodes(size: u64, mut lookup: impl FnMut(NodeRef) -> Option<Hash>) -> Option<Self> {
        let nodes = frontier_refs(size)
            .into_iter()
            .map(|r| lookup(r).map(|h| (r, h)))
            .collect::<Option<Vec<_>>>()?;
        Some(Frontier { size, nodes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns every perfect node it completes (the leaf
    /// itself first), which are what storage must keep.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeRef, Hash)> {
        let mut index = self.size;
        let mut level = 0u8;
        let mut cur = leaf;
        let mut out = vec![(NodeRef { level, index }, leaf)];
        while index & 1 == 1 {
            // The lowest frontier node is the left sibling at this level.
            let Some((_, left)) = self.nodes.pop() else {
                break;
            };
            cur = node_hash(&left, &cur);
            level += 1;
            index >>= 1;
            out.push((NodeRef { level, index }, cur));
        }
        self.nodes.push((NodeRef { level, index }, cur));
        self.size += 1;
        out
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some((_, last)) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, (_, h)| node_hash(h, &acc))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// RFC 6962 MTH straight from its definition, over leaf hashes.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// A store of perfect nodes built by appending.
    fn build(n: u64) -> (Vec<Hash>, HashMap<NodeRef, Hash>, Frontier) {
        let mut nodes = HashMap::new();
        let mut f = Frontier::empty();
        let mut leaves = Vec::new();
        for i in 0..n {
            let l = leaf_hash(format!("leaf {i}").as_bytes());
            leaves.push(l);
            nodes.extend(f.push(l));
        }
        (leaves, nodes, f)
    }

    fn getter(nodes: &HashMap<NodeRef, Hash>) -> impl FnMut(NodeRef) -> Result<Hash, NodeRef> + '_ {
        |r| nodes.get(&r).copied().ok_or(r)
    }

    fn h(s: &str) -> Hash {
        s.parse().unwrap()
    }

    #[test]
    fn hand_derived_small_trees() {
        let (a, b, c, d) = (
            leaf_hash(b"a"),
            leaf_hash(b"b"),
            leaf_hash(b"c"),
            leaf_hash(b"d"),
        );
        // Leaf hash written out: SHA-256 of the two octets 0x00 'a'.
        assert_eq!(a, sha256(&[0, b'a']));
        let mut f = Frontier::empty();
        assert_eq!(f.root(), sha256(b""));
        f.push(a);
        assert_eq!(f.root(), a);
        f.push(b);
        let ab = sha256(&[&[1u8][..], &a.0, &b.0].concat());
        assert_eq!(f.root(), ab);
        f.push(c);
        // Three leaves: k = 2, so root = H(1 || H(a,b) || c).
        assert_eq!(f.root(), node_hash(&ab, &c));
        f.push(d);
        let cd = node_hash(&c, &d);
        assert_eq!(f.root(), node_hash(&ab, &cd));
        // Inclusion of c in the 3-leaf tree: [H(a,b)]... no: PATH(2, D[3])
        // = PATH(0, D[2:3]) : MTH(D[0:2]) = [ab].
        let (_, nodes, _) = {
            let mut nodes = HashMap::new();
            let mut f = Frontier::empty();
            for l in [a, b, c, d] {
                nodes.extend(f.push(l));
            }
            (0, nodes, f)
        };
        let path = inclusion_path(2, 3, &mut getter(&nodes)).unwrap();
        assert_eq!(path, vec![ab]);
        assert!(verify_inclusion(&c, 2, 3, &path, &node_hash(&ab, &c)));
        // Inclusion of b in 4: [a, H(c,d)].
        assert_eq!(
            inclusion_path(1, 4, &mut getter(&nodes)).unwrap(),
            vec![a, cd]
        );
        // Consistency 3 -> 4: SUBPROOF(3, D[4], true) = SUBPROOF(1, D[2:4], false) : MTH(D[0:2])
        //                    = [c, d, ab].
        let proof = consistency_path(3, 4, &mut getter(&nodes)).unwrap();
        assert_eq!(proof, vec![c, d, ab]);
        assert!(verify_consistency(
            3,
            4,
            &node_hash(&ab, &c),
            &node_hash(&ab, &cd),
            &proof
        ));
        // Consistency 2 -> 4: [H(c,d)] (2 is a power of two: the old root is implied).
        let proof = consistency_path(2, 4, &mut getter(&nodes)).unwrap();
        assert_eq!(proof, vec![cd]);
        assert!(verify_consistency(2, 4, &ab, &node_hash(&ab, &cd), &proof));
    }

    /// The reference vectors of the certificate-transparency test suite:
    /// leaves "", 00, 10, 2021, 3031, 40414243, 5051525354555657,
    /// 606162636465666768696a6b6c6d6e6f and the roots of each prefix.
    #[test]
    fn rfc6962_reference_roots() {
        let data: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut f = Frontier::empty();
        for (d, r) in data.iter().zip(roots) {
            f.push(leaf_hash(d));
            assert_eq!(f.root(), h(r), "size {}", f.size());
        }
    }

    #[test]
    fn stored_nodes_give_the_definitional_root_and_proofs_that_verify() {
        let (leaves, nodes, frontier) = build(70);
        for size in 0..=70u64 {
            let want = mth(&leaves[..size as usize]);
            assert_eq!(
                root(size, &mut getter(&nodes)).unwrap(),
                want,
                "root {size}"
            );
            for index in 0..size {
                let path = inclusion_path(index, size, &mut getter(&nodes)).unwrap();
                assert!(
                    verify_inclusion(&leaves[index as usize], index, size, &path, &want),
                    "inclusion {index} in {size}"
                );
                assert!(!verify_inclusion(
                    &leaves[index as usize],
                    index + size,
                    size,
                    &path,
                    &want
                ));
                if !path.is_empty() {
                    let mut bad = path.clone();
                    bad[0].0[0] ^= 1;
                    assert!(!verify_inclusion(
                        &leaves[index as usize],
                        index,
                        size,
                        &bad,
                        &want
                    ));
                }
            }
            for first in 0..=size {
                let old = mth(&leaves[..first as usize]);
                let proof = consistency_path(first, size, &mut getter(&nodes)).unwrap();
                assert!(
                    verify_consistency(first, size, &old, &want, &proof),
                    "consistency {first} -> {size}"
                );
                if first > 0 && first < size {
                    let mut other = old;
                    other.0[1] ^= 1;
                    assert!(!verify_consistency(first, size, &other, &want, &proof));
                    let mut bad = proof.clone();
                    bad.pop();
                    assert!(!verify_consistency(first, size, &old, &want, &bad));
                }
            }
        }
        assert_eq!(frontier.root(), mth(&leaves));
        assert_eq!(
            Frontier::from_nodes(70, |r| nodes.get(&r).copied()).unwrap(),
            frontier
        );
    }

    #[test]
    fn a_proof_needs_few_nodes() {
        let size = 1_000_003u64;
        let needed = nodes_needed(|g| inclusion_path(123_457, size, g));
        assert!(needed.len() <= 64, "{}", needed.len());
        let needed = nodes_needed(|g| consistency_path(777_777, size, g));
        assert!(needed.len() <= 64, "{}", needed.len());
        assert_eq!(frontier_refs(0b1011).len(), 3);
        assert_eq!(
            frontier_refs(6),
            vec![
                NodeRef { level: 2, index: 0 },
                NodeRef { level: 1, index: 2 }
            ]
        );
    }
}
