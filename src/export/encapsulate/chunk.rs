//! Which layer each content object of the tree goes to.
//!
//! The unit is the content object, not the path: every path of an object (its hardlinks)
//! lands in the same layer, so no layer ever links into another. Layer 0 also holds every
//! directory of the tree; each other layer names the directories above its own files again,
//! with the same metadata, so it unpacks on its own.
//!
//! Without a prior image, objects are taken in path order and cut into `n` runs of about
//! equal size (an object starting at cumulative offset `s` of `total` bytes goes to layer
//! `s * n / total`): neighbouring files (a package's) stay together.
//!
//! With a prior image (the layers of an earlier version), every object keeps the layer its
//! path had there, and a new path takes the layer of the nearest path before it in byte order
//! (the first layer's when there is none). So a changed file changes its own layer only, a
//! new file the layer of its neighbours, and a new directory layer 0 as well: a one-file
//! change between two versions changes at most two layers.
//!
//! Layers left with no file (other than layer 0) are dropped.

use std::collections::{BTreeMap, HashMap};

use crate::export::encapsulate::walk::{Kind, Node};

/// Header bytes counted per object, so that many small files weigh something.
const ENTRY_OVERHEAD: u64 = 512;

/// Where the paths of an earlier version lay: path → index of its layer.
#[derive(Clone, Debug, Default)]
pub struct PriorLayers {
    /// Path of every file or symlink → its layer.
    pub paths: BTreeMap<String, usize>,
    /// Number of layers of the prior image.
    pub layers: usize,
}

impl PriorLayers {
    /// The layer of `path`: its own, else that of the nearest earlier path, else the first
    /// path's. `None` when the prior image had no files.
    fn layer_of(&self, path: &str) -> Option<usize> {
        if let Some(&l) = self.paths.get(path) {
            return Some(l);
        }
        self.paths
            .range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(path)))
            .next_back()
            .or_else(|| self.paths.iter().next())
            .map(|(_, &l)| l)
    }
}

/// The layer assignment: content checksum → layer, and the number of layers.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Layer of each content object.
    pub layer_of: HashMap<String, usize>,
    /// Number of layers (at least 1).
    pub layers: usize,
}

/// Splits the objects of `nodes` into at most `max_layers` layers (1 when `None`, the prior
/// image's count when there is a prior and no maximum). `size` gives an object's size.
pub fn plan(
    nodes: &[Node],
    max_layers: Option<usize>,
    prior: Option<&PriorLayers>,
    size: &mut dyn FnMut(&str) -> u64,
) -> Plan {
    let n = max_layers.or(prior.map(|p| p.layers)).unwrap_or(1).max(1);
    // Objects in order of their first path.
    let mut objects: Vec<(&str, &str)> = Vec::new();
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for node in nodes {
        if let Kind::Content { checksum } = &node.kind
            && seen.insert(checksum, ()).is_none()
        {
            objects.push((checksum, &node.path));
        }
    }
    let mut layer_of = HashMap::new();
    if n == 1 {
        for (c, _) in objects {
            layer_of.insert(c.to_string(), 0);
        }
        return compact(layer_of, 1);
    }
    if let Some(p) = prior.filter(|p| !p.paths.is_empty()) {
        // Take the prior layer of the first of the object's paths that the prior image had,
        // else of its first path's neighbour.
        let mut paths: HashMap<&str, Vec<&str>> = HashMap::new();
        for node in nodes {
            if let Kind::Content { checksum } = &node.kind {
                paths.entry(checksum).or_default().push(&node.path);
            }
        }
        for (c, first) in objects {
            let known = paths[c].iter().find_map(|p2| p.paths.get(*p2).copied());
            let l = known.or_else(|| p.layer_of(first)).unwrap_or(0);
            layer_of.insert(c.to_string(), l.min(n - 1));
        }
        return compact(layer_of, n);
    }
    let sizes: Vec<u64> = objects
        .iter()
        .map(|(c, _)| size(c) + ENTRY_OVERHEAD)
        .collect();
    let total: u64 = sizes.iter().sum::<u64>().max(1);
    let mut start = 0u64;
    for ((c, _), s) in objects.iter().zip(sizes) {
        let l = (u128::from(start) * n as u128 / u128::from(total)) as usize;
        layer_of.insert(c.to_string(), l.min(n - 1));
        start += s;
    }
    compact(layer_of, n)
}

/// Drops empty layers other than layer 0, renumbering the rest in order.
fn compact(mut layer_of: HashMap<String, usize>, n: usize) -> Plan {
    let mut used = vec![false; n];
    used[0] = true;
    for &l in layer_of.values() {
        used[l] = true;
    }
    let mut new_index = vec![0; n];
    let mut next = 0;
    for (i, u) in used.iter().enumerate() {
        if *u {
            new_index[i] = next;
            next += 1;
        }
    }
    for l in layer_of.values_mut() {
        *l = new_index[*l];
    }
    Plan {
        layer_of,
        layers: next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Vec<Node> {
        let mut v = vec![Node {
            path: String::new(),
            kind: Kind::Dir {
                meta: "m".into(),
                tree: "t".into(),
            },
        }];
        for (p, c) in files {
            v.push(Node {
                path: p.to_string(),
                kind: Kind::Content {
                    checksum: c.to_string(),
                },
            });
        }
        v
    }

    fn layers(plan: &Plan, nodes: &[Node]) -> Vec<usize> {
        nodes
            .iter()
            .filter_map(|n| match &n.kind {
                Kind::Content { checksum } => Some(plan.layer_of[checksum]),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn balanced_by_size_in_path_order() {
        let t = tree(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        let p = plan(&t, Some(2), None, &mut |_| 1000);
        assert_eq!(p.layers, 2);
        assert_eq!(layers(&p, &t), [0, 0, 1, 1]);
        // one big object takes a layer of its own; empty layers are dropped
        let p = plan(&t, Some(8), None, &mut |c| {
            if c == "1" { 1 << 30 } else { 10 }
        });
        assert_eq!(layers(&p, &t), [0, 1, 1, 1]);
        assert_eq!(p.layers, 2);
    }

    #[test]
    fn hardlinks_share_a_layer() {
        let t = tree(&[("a", "1"), ("b", "2"), ("z", "1")]);
        let p = plan(&t, Some(3), None, &mut |_| 1000);
        let l = layers(&p, &t);
        assert_eq!(l[0], l[2]);
    }

    #[test]
    fn prior_keeps_boundaries() {
        let prior = PriorLayers {
            paths: [("a", 0), ("b", 1), ("c", 1), ("d", 2)]
                .into_iter()
                .map(|(p, l)| (p.to_string(), l))
                .collect(),
            layers: 3,
        };
        // b changed content, bb is new (after b), 0 is new (before everything)
        let t = tree(&[
            ("0", "9"),
            ("a", "1"),
            ("b", "5"),
            ("bb", "6"),
            ("c", "3"),
            ("d", "4"),
        ]);
        let p = plan(&t, None, Some(&prior), &mut |_| 1);
        assert_eq!(layers(&p, &t), [0, 0, 1, 1, 1, 2]);
        assert_eq!(p.layers, 3);
    }

    /// The prior of a plan: where each path went.
    fn prior_of(plan: &Plan, nodes: &[Node]) -> PriorLayers {
        let mut paths = BTreeMap::new();
        for n in nodes {
            if let Kind::Content { checksum } = &n.kind {
                paths.insert(n.path.clone(), plan.layer_of[checksum]);
            }
        }
        PriorLayers {
            paths,
            layers: plan.layers,
        }
    }

    proptest::proptest! {
        /// With the previous version as prior, changing one file's content or adding one file
        /// moves no other object: only the layer holding the change differs.
        #[test]
        fn one_change_moves_nothing_else(
            names in proptest::collection::btree_set("[a-d]{1,3}(/[a-d]{1,3}){0,2}", 2..40),
            sizes in proptest::collection::vec(0u64..100_000, 40),
            n in 2usize..8,
            pick in 0usize..40,
            add in "[a-e]{1,4}",
        ) {
            let files: Vec<(String, String)> = names
                .iter()
                .enumerate()
                .map(|(i, p)| (p.clone(), format!("c{i}")))
                .collect();
            let refs: Vec<(&str, &str)> =
                files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
            let v1 = tree(&refs);
            let mut size = |c: &str| sizes[c[1..].parse::<usize>().unwrap() % sizes.len()];
            let p1 = plan(&v1, Some(n), None, &mut size);
            let prior = prior_of(&p1, &v1);
            // one file changes content
            let k = pick % files.len();
            let mut changed = refs.clone();
            changed[k].1 = "new";
            let v2 = tree(&changed);
            let p2 = plan(&v2, None, Some(&prior), &mut size);
            for (i, (_, c)) in changed.iter().enumerate() {
                if i != k {
                    proptest::prop_assert_eq!(p2.layer_of[*c], p1.layer_of[*c]);
                }
            }
            // one file is added (if its name is free)
            if !names.contains(&add) {
                let mut added = refs.clone();
                added.push((add.as_str(), "added"));
                added.sort();
                let v3 = tree(&added);
                let p3 = plan(&v3, None, Some(&prior), &mut size);
                for (_, c) in &refs {
                    proptest::prop_assert_eq!(p3.layer_of[*c], p1.layer_of[*c]);
                }
            }
        }
    }
}
